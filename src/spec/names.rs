//! The names a pipeline gives: node ids, artifact names and port names. They reach file
//! names (job logs), shell scripts (`dag export --to slurm`), Slurm job names and
//! pictures, so they keep to a small character set everywhere.

/// The longest name accepted, in characters.
pub const MAX_NAME_LEN: usize = 64;

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("is empty")]
    Empty,
    #[error("is {len} characters long; the limit is {MAX_NAME_LEN}")]
    TooLong { len: usize },
    #[error("has the character {}, which names may not hold", shown(*.0))]
    Character(char),
    #[error("starts with `-`, which reads as an option on a command line")]
    LeadingDash,
}

/// What a name may hold, for help texts.
pub fn name_rule() -> String {
    format!("a name is 1 to {MAX_NAME_LEN} ASCII letters, digits, `_` and `-`, not starting with `-`")
}

/// Whether `c` may appear in a name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Check one name against the character set: ASCII letters, digits, `_` and `-`, not
/// starting with `-`, 1 to [`MAX_NAME_LEN`] characters.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return Err(NameError::Character(c));
    }
    if name.len() > MAX_NAME_LEN {
        // Every accepted character is one byte.
        return Err(NameError::TooLong { len: name.len() });
    }
    if name.starts_with('-') {
        return Err(NameError::LeadingDash);
    }
    Ok(())
}

/// A character for a message: printable ones in backquotes, others as their code
/// (`U+0007`), so a message never carries a control character to the terminal.
fn shown(c: char) -> String {
    if c == '`' {
        "U+0060 (a backquote)".into()
    } else if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("`{c}`")
    }
}

/// `text` with control characters written as `\u{7}`, for messages that quote a name
/// the user gave (a terminal never receives an escape sequence from a pipeline file).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_to_the_set() {
        for ok in [
            "load",
            "n199999",
            "write_train",
            "a-b",
            "_x",
            "A1",
            &"x".repeat(64),
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name("a$(touch X)"), Err(NameError::Character('$')));
        assert_eq!(check_name("b`touch X`"), Err(NameError::Character('`')));
        assert_eq!(check_name("a b"), Err(NameError::Character(' ')));
        assert_eq!(check_name("a.b"), Err(NameError::Character('.')));
        assert_eq!(check_name("é"), Err(NameError::Character('é')));
        assert_eq!(check_name("-x"), Err(NameError::LeadingDash));
        assert_eq!(check_name(&"x".repeat(65)), Err(NameError::TooLong { len: 65 }));
        assert_eq!(
            NameError::Character('\u{7}').to_string(),
            "has the character U+0007, which names may not hold"
        );
        assert_eq!(
            NameError::Character('`').to_string(),
            "has the character U+0060 (a backquote), which names may not hold"
        );
        assert_eq!(
            NameError::Character('$').to_string(),
            "has the character `$`, which names may not hold"
        );
        assert_eq!(printable("a\u{1b}[31m"), "a\\u{1b}[31m");
        assert_eq!(printable("plain"), "plain");
    }
}
