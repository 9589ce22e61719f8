//! Pictures of a pipeline. (Types only; rendering lands with the plot branch.)

#[derive(Debug, Clone)]
pub struct PlotGraph {
    pub title: String,
    pub nodes: Vec<PlotNode>,
    pub edges: Vec<PlotEdge>,
}

#[derive(Debug, Clone)]
pub struct PlotNode {
    pub id: String,
    pub op: String,
    pub status: Option<PlotStatus>,
    pub duration_ms: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlotStatus {
    Ok,
    Failed,
    Skipped,
    Cached,
}

#[derive(Debug, Clone)]
pub struct PlotEdge {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub ordering_only: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("rendering is not built in yet")]
    Unavailable,
}

pub fn to_dot(_g: &PlotGraph) -> String {
    String::new()
}
pub fn to_mermaid(_g: &PlotGraph) -> String {
    String::new()
}
pub fn to_svg(_g: &PlotGraph) -> Result<String, PlotError> {
    Err(PlotError::Unavailable)
}
pub fn to_png(_g: &PlotGraph) -> Result<Vec<u8>, PlotError> {
    Err(PlotError::Unavailable)
}
