//! Remote HTML is cleaned before it is stored and again before it is shown, with an allowlist
//! close to Mastodon's.

use std::sync::LazyLock;

static CLEANER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut b = ammonia::Builder::empty();
    b.add_tags([
        "p",
        "br",
        "a",
        "span",
        "del",
        "pre",
        "code",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "ul",
        "ol",
        "li",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    ])
    .add_tag_attributes("a", ["href", "class"])
    .add_tag_attributes("span", ["class"])
    .add_tag_attributes("ol", ["start", "reversed"])
    .add_tag_attributes("li", ["value"])
    .url_schemes(["http", "https", "mailto"].into_iter().collect())
    .link_rel(Some("nofollow noopener noreferrer"))
    .attribute_filter(|element, attribute, value| {
        // Classes are kept only where Mastodon uses them for mentions and hashtags.
        if attribute == "class" {
            let kept: Vec<&str> = value
                .split_whitespace()
                .filter(|c| {
                    matches!(
                        *c,
                        "mention" | "hashtag" | "u-url" | "h-card" | "invisible" | "ellipsis"
                    ) && (element == "a" || element == "span")
                })
                .collect();
            return if kept.is_empty() {
                None
            } else {
                Some(kept.join(" ").into())
            };
        }
        Some(value.into())
    });
    b
});

pub fn html(input: &str) -> String {
    CLEANER.clean(input).to_string()
}

/// Plain text for names and other fields that must not carry markup.
pub fn plain(input: &str) -> String {
    ammonia::Builder::empty()
        .clean(input)
        .to_string()
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}

/// Turns a local author's plain text into HTML: escaped, paragraphs and line breaks kept,
/// links and hashtags linked.
pub fn text_to_html(text: &str, hashtag_href: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str("<p>");
        let lines: Vec<String> = para
            .lines()
            .map(|line| link_words(line, &hashtag_href))
            .collect();
        out.push_str(&lines.join("<br>"));
        out.push_str("</p>");
    }
    out
}

fn link_words(line: &str, hashtag_href: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.starts_with("https://") || word.starts_with("http://") {
            let trimmed = word.trim_end_matches(['.', ',', ')', '!', '?', ';', ':']);
            let rest = &word[trimmed.len()..];
            let e = escape(trimmed);
            out.push_str(&format!(
                "<a href=\"{e}\" rel=\"nofollow noopener noreferrer\">{e}</a>{}",
                escape(rest)
            ));
            continue;
        }
        if let Some(stripped) = word.strip_prefix('#') {
            let end = stripped
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(stripped.len(), |(i, _)| i);
            let (tag, rest) = stripped.split_at(end);
            if let (false, Some(href)) = (tag.is_empty(), hashtag_href(tag)) {
                out.push_str(&format!(
                    "<a href=\"{}\" class=\"mention hashtag\" rel=\"tag\">#<span>{}</span></a>{}",
                    escape(&href),
                    escape(tag),
                    escape(rest)
                ));
                continue;
            }
        }
        out.push_str(&escape(word));
    }
    out
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_handlers_and_javascript_urls_are_removed() {
        let dirty = r#"<p onclick="x()">hi<script>alert(1)</script><a href="javascript:alert(1)">x</a><img src=x onerror=alert(1)><span style="background:url(x)" class="evil mention">m</span></p>"#;
        let clean = html(dirty);
        for bad in [
            "script",
            "onclick",
            "javascript",
            "onerror",
            "<img",
            "style",
            "evil",
        ] {
            assert!(!clean.contains(bad), "{bad} survived in {clean}");
        }
        assert!(clean.contains("class=\"mention\""), "{clean}");
    }

    #[test]
    fn local_text_is_escaped_and_linked() {
        let html = text_to_html("Hello <b>all</b> #HWB\n\nsee https://x.example/a.", |t| {
            Some(format!("https://h.example/c/{}", t.to_lowercase()))
        });
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(html.contains("href=\"https://h.example/c/hwb\""), "{html}");
        assert!(html.contains("<a href=\"https://x.example/a\""), "{html}");
        assert_eq!(plain("<b>Ann</b> &amp; co"), "Ann & co");
    }
}
