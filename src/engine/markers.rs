//! Conflict markers: a file written by a conflicted merge, read as a list of
//! segments, plain text and conflicts. Conflict reports read hunks from it;
//! the memory of resolutions learns and replays resolutions with it.

/// One piece of a file with conflict markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Conflict(Conflict),
}

/// One conflicting region (diff3 style; `base` is empty for merge style).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// 1-based line of the release's version of the file where it starts.
    pub start_line: usize,
    pub upstream: String,
    pub base: String,
    pub patch: String,
}

/// Whether `line` (without its newline) is the marker `prefix` (seven
/// characters) alone or followed by a space and a label.
fn is_marker(line: &str, prefix: &str) -> bool {
    line.starts_with(prefix) && (line.len() == 7 || line[7..].starts_with(' '))
}

/// Splits `text` into segments. A conflict that is not closed before the end
/// of the file stays text: better to show a marker than to invent a hunk.
pub fn segments(text: &str) -> Vec<Segment> {
    #[derive(PartialEq)]
    enum Side {
        Outside,
        Upstream,
        Base,
        Patch,
    }
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut pending = String::new();
    let mut side = Side::Outside;
    let mut upstream_line = 0;
    let mut current = Conflict { start_line: 0, upstream: String::new(), base: String::new(), patch: String::new() };
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if side != Side::Outside {
            pending.push_str(line);
        }
        match side {
            Side::Outside if is_marker(bare, "<<<<<<<") => {
                side = Side::Upstream;
                current.start_line = upstream_line + 1;
                pending.push_str(line);
            }
            Side::Outside => {
                upstream_line += 1;
                plain.push_str(line);
            }
            Side::Upstream if is_marker(bare, "|||||||") => side = Side::Base,
            Side::Upstream | Side::Base if is_marker(bare, "=======") => side = Side::Patch,
            Side::Upstream => {
                upstream_line += 1;
                current.upstream.push_str(line);
            }
            Side::Base => current.base.push_str(line),
            Side::Patch if is_marker(bare, ">>>>>>>") => {
                if !plain.is_empty() {
                    out.push(Segment::Text(std::mem::take(&mut plain)));
                }
                let empty =
                    Conflict { start_line: 0, upstream: String::new(), base: String::new(), patch: String::new() };
                out.push(Segment::Conflict(std::mem::replace(&mut current, empty)));
                pending.clear();
                side = Side::Outside;
            }
            Side::Patch => current.patch.push_str(line),
        }
    }
    plain.push_str(&pending);
    if !plain.is_empty() {
        out.push(Segment::Text(plain));
    }
    out
}

/// Names for the sides of a conflict, as a person should read them.
pub struct Labels {
    pub upstream: String,
    pub base: String,
    pub patch: String,
}

/// `text` with each marker line's label replaced (merge-tree labels sides
/// with object ids, which tell a person nothing).
pub fn relabel(text: &str, labels: &Labels) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let ending = &line[bare.len()..];
        let label = [("<<<<<<<", &labels.upstream), ("|||||||", &labels.base), (">>>>>>>", &labels.patch)]
            .into_iter()
            .find(|(marker, _)| is_marker(bare, marker));
        match label {
            Some((marker, label)) => {
                out.push_str(marker);
                out.push(' ');
                out.push_str(label);
                out.push_str(ending);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Whether `text` still has a conflict marker at the start of a line. Only
/// the opening and closing markers count: a lone `=======` is also how
/// Markdown and reStructuredText underline a heading.
pub fn has_markers(text: &str) -> bool {
    text.lines().any(|line| is_marker(line, "<<<<<<<") || is_marker(line, ">>>>>>>"))
}
#[cfg(test)]
mod tests {
    use super::*;

    fn conflicts(text: &str) -> Vec<Conflict> {
        segments(text)
            .into_iter()
            .filter_map(|segment| match segment {
                Segment::Conflict(conflict) => Some(conflict),
                Segment::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn diff3_markers() {
        let text = "a\nb\n<<<<<<< ours\nport = env\nhost = x\n||||||| base\nport = 3000\n=======\nport = 8080\n>>>>>>> theirs\nc\n<<<<<<< o\n||||||| b\nold\n=======\nnew\n>>>>>>> t\nend\n";
        let found = conflicts(text);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].start_line, 3);
        assert_eq!(found[0].upstream, "port = env\nhost = x\n");
        assert_eq!(found[0].base, "port = 3000\n");
        assert_eq!(found[0].patch, "port = 8080\n");
        // Upstream deleted the region: it starts after line 5 (`c`).
        assert_eq!(found[1].start_line, 6);
        assert_eq!(found[1].upstream, "");
        assert_eq!(found[1].patch, "new\n");
        let texts: Vec<String> =
            segments(text).into_iter().filter_map(|s| if let Segment::Text(t) = s { Some(t) } else { None }).collect();
        assert_eq!(texts, ["a\nb\n", "c\n", "end\n"]);
    }

    #[test]
    fn merge_style_lookalikes_and_unclosed() {
        let text = "<<<<<<< x\nu\n=======\np\n>>>>>>> y\n======== not a marker\n<<<<<<<<< nor this\n";
        let found = conflicts(text);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].upstream.as_str(), found[0].patch.as_str()), ("u\n", "p\n"));
        assert!(conflicts("plain\ntext\n").is_empty());
        let unclosed = "a\n<<<<<<< x\nu\n=======\np\n";
        assert_eq!(segments(unclosed), vec![Segment::Text(unclosed.to_string())]);
    }

    #[test]
    fn relabels_marker_lines_only() {
        let labels = Labels { upstream: "upstream v2".into(), base: "base".into(), patch: "patch abc \"Port\"".into() };
        let text = "x\n<<<<<<< 9eb7\nu\n||||||| 13e8\nb\n=======\np\n>>>>>>> 55b4\n<<<<<<<< not one\n";
        assert_eq!(
            relabel(text, &labels),
            "x\n<<<<<<< upstream v2\nu\n||||||| base\nb\n=======\np\n>>>>>>> patch abc \"Port\"\n<<<<<<<< not one\n"
        );
    }

    #[test]
    fn detects_leftover_markers() {
        assert!(has_markers("x\n<<<<<<< HEAD\ny\n"));
        assert!(has_markers("a\n>>>>>>> patch\n"));
        assert!(!has_markers("Install\n=======\n\nRun make.\n"), "a setext heading is not a marker");
        assert!(!has_markers("x\n======== heading underline\n<<<<<<<<\n"));
    }
}
