//! Status badges: a shields-style SVG (label "patchmoi", the upstream's
//! latest attempt status as the message, coloured by it) for a README.
//! Every text in the SVG is escaped: a status is ours, but the label and
//! title carry a repository name taken from the URL.

use crate::service::attempt::AttemptStatus;

/// What a badge says when the upstream has no attempt, or no event at all.
pub const UNKNOWN: &str = "unknown";

/// The message colour: green for a candidate, red for a maintainer's turn,
/// blue while running, grey otherwise (shields.io's palette).
pub fn colour(status: Option<AttemptStatus>) -> &'static str {
    match status {
        Some(AttemptStatus::Changed | AttemptStatus::Completed) => "#4c1",
        Some(AttemptStatus::NeedsIntervention | AttemptStatus::Blocked | AttemptStatus::Failed) => "#e05d44",
        Some(AttemptStatus::Started) => "#007ec6",
        Some(AttemptStatus::Skipped) | None => "#9f9f9f",
    }
}

/// `&`, `<`, `>`, `"` and `'` as XML entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Text width in pixels at 11px Verdana, roughly, as shields estimates it
/// when it has no font metrics: wide enough for lowercase words.
fn width(text: &str) -> usize {
    text.chars().count() * 7 + 10
}

/// The badge of `repo` whose latest attempt has `status`.
pub fn svg(repo: &str, status: Option<AttemptStatus>) -> String {
    let label = "patchmoi";
    let message = status.map(AttemptStatus::as_str).unwrap_or(UNKNOWN);
    let (left, right) = (width(label), width(message));
    let total = left + right;
    let title = escape(&format!("patchmoi {repo}: {message}"));
    let (label_x, message_x) = (left * 5, (left + right / 2) * 10);
    let colour = colour(status);
    let message = escape(message);
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}"><title>{title}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><rect width="{total}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="110"><text x="{label_x}" y="140" transform="scale(.1)">{label}</text><text x="{message_x}" y="140" transform="scale(.1)">{message}</text></g></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_status() {
        assert_eq!(colour(Some(AttemptStatus::Changed)), "#4c1");
        assert_eq!(colour(Some(AttemptStatus::NeedsIntervention)), "#e05d44");
        assert_eq!(colour(Some(AttemptStatus::Started)), "#007ec6");
        assert_eq!(colour(None), "#9f9f9f");
    }

    #[test]
    fn a_hostile_repository_name_stays_text() {
        let svg = svg("a\"/><script>x</script>&'", Some(AttemptStatus::Failed));
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("a&quot;/&gt;&lt;script&gt;x&lt;/script&gt;&amp;&apos;: failed"), "{svg}");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\""), "{svg}");
        assert!(svg.contains(">needs_intervention<") || svg.contains(">failed<"), "{svg}");
    }

    #[test]
    fn no_attempt_is_an_unknown_grey_badge() {
        let svg = svg("openai/codex", None);
        assert!(svg.contains(">unknown</text>") && svg.contains("fill=\"#9f9f9f\""), "{svg}");
    }
}
