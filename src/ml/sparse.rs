//! Compressed sparse matrices: CSR for rows (transforming, predicting) and CSC for
//! columns (split search scans a feature's non-zeros).

use serde::{Deserialize, Serialize};

/// Compressed sparse rows, `f32` values; column indices ascending within a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Csr {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    pub fn new(n_cols: usize) -> Self {
        Csr {
            n_rows: 0,
            n_cols,
            indptr: vec![0],
            indices: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Append a row given as (column, value) pairs sorted by column.
    pub fn push_row(&mut self, entries: impl IntoIterator<Item = (u32, f32)>) {
        for (c, v) in entries {
            debug_assert!((c as usize) < self.n_cols);
            if v != 0.0 {
                self.indices.push(c);
                self.values.push(v);
            }
        }
        self.indptr.push(self.indices.len());
        self.n_rows += 1;
    }

    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Value at (row, col) by binary search.
    pub fn get(&self, i: usize, c: u32) -> f32 {
        let (idx, vals) = self.row(i);
        idx.binary_search(&c).map_or(0.0, |k| vals[k])
    }

    /// Rows `rows`, in that order.
    pub fn select_rows(&self, rows: &[usize]) -> Csr {
        let mut out = Csr::new(self.n_cols);
        for &r in rows {
            let (idx, vals) = self.row(r);
            out.push_row(idx.iter().copied().zip(vals.iter().copied()));
        }
        out
    }

    /// `self` with `other`'s columns appended on the right (same rows).
    pub fn hstack(&self, other: &Csr) -> Csr {
        assert_eq!(self.n_rows, other.n_rows, "hstack needs equal row counts");
        let mut out = Csr::new(self.n_cols + other.n_cols);
        let shift = self.n_cols as u32;
        for i in 0..self.n_rows {
            let (a, av) = self.row(i);
            let (b, bv) = other.row(i);
            let left = a.iter().copied().zip(av.iter().copied());
            let right = b.iter().map(|&c| c + shift).zip(bv.iter().copied());
            out.push_row(left.chain(right));
        }
        out
    }

    /// Column-major copy.
    pub fn to_csc(&self) -> Csc {
        let mut counts = vec![0usize; self.n_cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for k in 0..self.n_cols {
            counts[k + 1] += counts[k];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut rows = vec![0u32; self.nnz()];
        let mut values = vec![0f32; self.nnz()];
        for i in 0..self.n_rows {
            let (idx, vals) = self.row(i);
            for (&c, &v) in idx.iter().zip(vals) {
                let at = next[c as usize];
                rows[at] = i as u32;
                values[at] = v;
                next[c as usize] += 1;
            }
        }
        Csc {
            n_rows: self.n_rows,
            n_cols: self.n_cols,
            indptr,
            rows,
            values,
        }
    }
}

/// Compressed sparse columns; row indices ascending within a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Csc {
    pub n_rows: usize,
    pub n_cols: usize,
    pub indptr: Vec<usize>,
    pub rows: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csc {
    pub fn col(&self, c: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[c], self.indptr[c + 1]);
        (&self.rows[a..b], &self.values[a..b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_csc_round_trip_and_hstack() {
        let mut m = Csr::new(3);
        m.push_row([(0, 1.0), (2, 2.0)]);
        m.push_row([]);
        m.push_row([(1, 3.0), (2, 0.0)]);
        assert_eq!(m.nnz(), 3, "explicit zeros are not stored");
        assert_eq!(m.get(0, 2), 2.0);
        assert_eq!(m.get(1, 0), 0.0);
        let c = m.to_csc();
        assert_eq!(c.col(2), (&[0u32][..], &[2.0f32][..]));
        assert_eq!(c.col(1), (&[2u32][..], &[3.0f32][..]));
        let mut d = Csr::new(1);
        d.push_row([(0, 5.0)]);
        d.push_row([(0, 6.0)]);
        d.push_row([(0, 7.0)]);
        let h = m.hstack(&d);
        assert_eq!(h.n_cols, 4);
        assert_eq!(h.row(1), (&[3u32][..], &[6.0f32][..]));
        assert_eq!(m.select_rows(&[2, 0]).row(0), (&[1u32][..], &[3.0f32][..]));
    }
}
