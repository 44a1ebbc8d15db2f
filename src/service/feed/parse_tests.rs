//! Parser tests: GitHub's Atom shape, RSS, bad XML, tags never from titles.

use super::*;

const CODEX_ATOM: &str = include_str!("../../../tests/fixtures/feeds/codex-releases.atom");

#[test]
fn atom_tags_come_from_the_link_not_the_title() {
    let entries = parse_xml(CODEX_ATOM).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].title, "0.131.0");
    assert_eq!(entries[0].tag.as_deref(), Some("rust-v0.131.0"));
    assert_eq!(entries[0].id, "tag:github.com,2008:Repository/965415649/rust-v0.131.0");
    assert_eq!(entries[0].published_at.as_deref(), Some("2026-05-20T18:00:00Z"));
    assert_eq!(entries[1].title, "0.130.0", "CDATA unwraps");
    assert_eq!(entries[1].tag.as_deref(), Some("rust-v0.130.0"));
}

#[test]
fn github_ids_give_the_tag_when_the_link_does_not() {
    let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>tag:github.com,2008:Repository/1/v2.0.0</id>
        <title>Two</title><link href="https://example.com/elsewhere"/></entry></feed>"#;
    assert_eq!(parse_xml(xml).unwrap()[0].tag.as_deref(), Some("v2.0.0"));
    let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>urn:x</id><title>v3</title></entry></feed>"#;
    assert_eq!(parse_xml(xml).unwrap()[0].tag, None, "a title is never a tag");
}

#[test]
fn rss_items_parse() {
    let xml = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>
        <item><title>Forgejo 9.0.1</title><link>https://codeberg.org/forgejo/forgejo/releases/tag/v9.0.1</link>
        <guid>https://codeberg.org/forgejo/forgejo/releases/tag/v9.0.1</guid><pubDate>Mon, 02 Dec 2024 10:00:00 +0000</pubDate></item>
        </channel></rss>"#;
    let entries = parse_xml(xml).unwrap();
    assert_eq!(entries[0].tag.as_deref(), Some("v9.0.1"));
    assert_eq!(entries[0].title, "Forgejo 9.0.1");
}

#[test]
fn bad_feeds_are_errors() {
    assert!(parse_xml("<feed><entry>").unwrap_err().contains("not valid XML"));
    assert!(parse_xml("<html/>").unwrap_err().contains("found <html>"));
    assert!(parse_xml(r#"<feed xmlns="http://www.w3.org/2005/Atom"/>"#).unwrap().is_empty());
}

#[test]
fn percent_encoded_tags_decode() {
    assert_eq!(tag_from_url("https://x/o/r/releases/tag/release%2F1.0").as_deref(), Some("release/1.0"));
    assert_eq!(tag_from_url("https://x/o/r/releases"), None);
}

#[test]
fn drafts_never_and_prereleases_when_asked() {
    let release = |tag: &str, draft: bool, prerelease: bool| Release {
        tag_name: tag.into(),
        name: None,
        html_url: None,
        draft,
        prerelease,
        published_at: None,
    };
    let releases = [release("v3-draft", true, false), release("v2-rc", false, true), release("v1", false, false)];
    let tags = |list: Vec<Entry>| list.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(tags(release_entries(&releases, false)), ["v1"]);
    assert_eq!(tags(release_entries(&releases, true)), ["v2-rc", "v1"]);
}
