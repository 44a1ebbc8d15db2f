//! Feed entries from Atom, RSS and GitHub's releases JSON. The release tag
//! comes from the link, GitHub's `/releases/tag/<tag>` or GitLab's
//! `/-/releases/<tag>` (or GitHub's `tag_name`), never from the title:
//! openai/codex titles its tag `rust-v0.131.0` as `0.131.0`.

use percent_encoding::percent_decode_str;

use crate::github::Release;

/// One release announced by a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The feed's own id for the entry (cursor key).
    pub id: String,
    /// The release tag, when the entry names one.
    pub tag: Option<String>,
    pub title: String,
    pub url: Option<String>,
    pub published_at: Option<String>,
}

/// Atom `<entry>`s, or RSS `<item>`s when there are none; newest first as
/// the feed lists them.
pub fn parse_xml(text: &str) -> Result<Vec<Entry>, String> {
    let doc = roxmltree::Document::parse(text).map_err(|err| format!("not valid XML: {err}"))?;
    let root = doc.root_element();
    let atom: Vec<Entry> = root.children().filter(|n| n.has_tag_name("entry")).map(|node| atom_entry(&node)).collect();
    if !atom.is_empty() || root.tag_name().name() == "feed" {
        return Ok(atom.into_iter().filter(|entry| !entry.id.is_empty()).collect());
    }
    if root.tag_name().name() != "rss" && root.tag_name().name() != "RDF" {
        return Err(format!("expected an Atom <feed> or an RSS <rss>, found <{}>", root.tag_name().name()));
    }
    let items = root.descendants().filter(|n| n.has_tag_name("item")).map(|node| rss_entry(&node));
    Ok(items.filter(|entry| !entry.id.is_empty()).collect())
}

fn child_text(node: &roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    node.children()
        .find(|child| child.has_tag_name(name))
        .map(|child| {
            child.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect::<String>().trim().to_string()
        })
        .filter(|text| !text.is_empty())
}

fn atom_entry(node: &roxmltree::Node<'_, '_>) -> Entry {
    let links: Vec<_> = node.children().filter(|child| child.has_tag_name("link")).collect();
    let url = links
        .iter()
        .find(|link| link.attribute("rel").is_none_or(|rel| rel == "alternate"))
        .or(links.first())
        .and_then(|link| link.attribute("href"))
        .map(str::to_string);
    let id = child_text(node, "id").or_else(|| url.clone()).unwrap_or_default();
    Entry {
        tag: url.as_deref().and_then(tag_from_url).or_else(|| tag_from_github_id(&id)),
        title: child_text(node, "title").unwrap_or_default(),
        published_at: child_text(node, "updated").or_else(|| child_text(node, "published")),
        id,
        url,
    }
}

fn rss_entry(node: &roxmltree::Node<'_, '_>) -> Entry {
    let url = child_text(node, "link");
    let id = child_text(node, "guid").or_else(|| url.clone()).unwrap_or_default();
    Entry {
        tag: url.as_deref().and_then(tag_from_url).or_else(|| tag_from_url(&id)),
        title: child_text(node, "title").unwrap_or_default(),
        published_at: child_text(node, "pubDate"),
        id,
        url,
    }
}

/// `.../releases/tag/<tag>` (GitHub, Gitea, Forgejo) or
/// `.../-/releases/<tag>` (GitLab's `releases.atom`) → `<tag>`,
/// percent-decoded (GitLab writes a `/` in a tag as `%2F`).
pub fn tag_from_url(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("/releases/tag/").or_else(|| url.split_once("/-/releases/"))?;
    let raw = rest.split(['?', '#']).next()?.trim_end_matches('/');
    let tag = percent_decode_str(raw).decode_utf8().ok()?.to_string();
    (!tag.is_empty()).then_some(tag)
}

/// GitHub's Atom ids look like `tag:github.com,2008:Repository/965415649/rust-v0.131.0`.
fn tag_from_github_id(id: &str) -> Option<String> {
    let rest = id.strip_prefix("tag:github.com,")?;
    let (_, after) = rest.split_once(":Repository/")?;
    let (_, tag) = after.split_once('/')?;
    let tag = percent_decode_str(tag).decode_utf8().ok()?.to_string();
    (!tag.is_empty()).then_some(tag)
}

/// Releases from the REST API as entries: drafts never, prereleases only
/// when asked.
pub fn release_entries(releases: &[Release], prereleases: bool) -> Vec<Entry> {
    releases
        .iter()
        .filter(|release| !release.draft && (prereleases || !release.prerelease))
        .map(|release| Entry {
            id: release.tag_name.clone(),
            tag: Some(release.tag_name.clone()),
            title: release.name.clone().unwrap_or_default(),
            url: release.html_url.clone(),
            published_at: release.published_at.clone(),
        })
        .collect()
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
