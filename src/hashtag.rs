//! Hashtag ⇄ community names: normalisation and extraction from text (DESIGN.md §3).

use unicode_normalization::UnicodeNormalization;

/// Longest community name we accept, in characters.
pub const MAX_TAG_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("hashtag {0:?} has no letters or digits")]
    Empty(String),
    #[error("hashtag {0:?} may hold only letters, digits and underscores")]
    InvalidCharacter(String),
    #[error("hashtag {0:?} is longer than {MAX_TAG_CHARS} characters")]
    TooLong(String),
}

/// Strips one leading `#`, applies Unicode NFC, then full lower-casing. `#HWB`, `#hwb` and
/// `#Hwb` give `hwb`; `#Fàilte` gives `fàilte` (kept, not transliterated).
pub fn normalize(raw: &str) -> Result<String, TagError> {
    let trimmed = raw.trim();
    let bare = trimmed.strip_prefix('#').unwrap_or(trimmed);
    let composed: String = bare.nfc().collect();
    let lowered: String = composed.chars().flat_map(char::to_lowercase).collect();
    // Lower-casing can decompose (e.g. 'İ'), so compose again.
    let normal: String = lowered.nfc().collect();
    if !normal.chars().any(char::is_alphanumeric) {
        return Err(TagError::Empty(raw.to_string()));
    }
    if !normal.chars().all(is_tag_char) {
        return Err(TagError::InvalidCharacter(raw.to_string()));
    }
    if normal.chars().count() > MAX_TAG_CHARS {
        return Err(TagError::TooLong(raw.to_string()));
    }
    Ok(normal)
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || is_combining_mark(c)
}

/// Combining marks that NFC leaves uncomposed still belong to the word.
fn is_combining_mark(c: char) -> bool {
    matches!(c as u32, 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x20D0..=0x20FF | 0xFE20..=0xFE2F)
}

/// The hashtags written in plain text, normalised and de-duplicated, in order of first use.
/// A `#` counts only at the start or after a character that cannot be inside a word, so URL
/// fragments (`page#section`) are not tags.
pub fn extract(text: &str) -> Vec<String> {
    extract_as_written(text)
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Like [`extract`], with each tag's first spelling as written (`("hwb", "HWB")`), so that a
/// community created from a post keeps the casing its author gave it.
pub fn extract_as_written(text: &str) -> Vec<(String, String)> {
    let mut tags: Vec<(String, String)> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let starts_tag =
            chars[i] == '#' && (i == 0 || !(is_tag_char(chars[i - 1]) || chars[i - 1] == '/'));
        if !starts_tag {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < chars.len() && is_tag_char(chars[end]) {
            end += 1;
        }
        let word: String = chars[start..end].iter().collect();
        if let Ok(tag) = normalize(&word) {
            if !tags.iter().any(|(t, _)| *t == tag) {
                tags.push((tag, word));
            }
        }
        i = end.max(start);
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_variants_are_one_community() {
        for raw in ["#HWB", "#hwb", "#Hwb", "hwb", " #hWb "] {
            assert_eq!(normalize(raw).as_deref(), Ok("hwb"), "{raw}");
        }
    }

    #[test]
    fn accents_are_kept_and_composed() {
        assert_eq!(normalize("#Fàilte").as_deref(), Ok("fàilte"));
        // 'a' followed by a combining grave accent composes to the same community.
        assert_eq!(normalize("#Fa\u{300}ilte").as_deref(), Ok("fàilte"));
        assert_eq!(normalize("#ÉCOLE").as_deref(), Ok("école"));
    }

    #[test]
    fn punctuation_only_tags_are_refused() {
        assert!(matches!(normalize("#!!!"), Err(TagError::Empty(_))));
        assert!(matches!(normalize("#"), Err(TagError::Empty(_))));
        assert!(matches!(normalize("#___"), Err(TagError::Empty(_))));
        assert!(matches!(
            normalize("#hwb!"),
            Err(TagError::InvalidCharacter(_))
        ));
        assert!(matches!(
            normalize(&"a".repeat(65)),
            Err(TagError::TooLong(_))
        ));
    }

    #[test]
    fn extraction_finds_tags_in_text() {
        assert_eq!(
            extract("Sharing our #HWB and #cpdlead routine. #hwb again, #Fàilte!"),
            vec!["hwb", "cpdlead", "fàilte"]
        );
        assert_eq!(
            extract("see https://x.example/page#section and a#b"),
            Vec::<String>::new()
        );
        assert_eq!(extract("#!!! and # alone"), Vec::<String>::new());
        assert_eq!(extract("(#maths_2)"), vec!["maths_2"]);
        assert_eq!(
            extract_as_written("#Fàilte and #FÀILTE"),
            vec![("fàilte".to_string(), "Fàilte".to_string())]
        );
    }
}
