//! What the fake GitHub does for each operation: the state changes and the
//! answers GitHub gives (only the fields patchmoi reads, plus ids and URLs).

use axum::response::Response;
use serde_json::{json, Value};

use super::{branch, commit_of, delete_branch, has_commit, reply, reply_page, Ctx, Page, State};

#[allow(clippy::too_many_arguments)]
pub fn route(
    state: &mut State,
    ctx: &Ctx,
    method: &str,
    template: &str,
    param: &dyn Fn(&str) -> String,
    q: &dyn Fn(&str) -> Option<String>,
    page: &dyn Fn(Vec<Value>) -> Page,
    repo: &str,
    body: Value,
) -> Response {
    let html = |kind: &str, number: u64| format!("https://github.example/{repo}/{kind}/{number}");
    match (method, template) {
        ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs") => {
            let sha = commit_of(ctx, &param("ref"));
            let name = q("check_name");
            let runs: Vec<Value> = state
                .check_runs
                .iter()
                .filter(|run| {
                    run["head_sha"] == sha.as_str() && name.as_ref().is_none_or(|n| run["name"] == n.as_str())
                })
                .cloned()
                .collect();
            let total = runs.len();
            let (runs, link) = page(runs);
            reply_page(json!({"total_count": total, "check_runs": runs}), link)
        }
        ("post", "/repos/{owner}/{repo}/check-runs") => {
            let sha = body["head_sha"].as_str().unwrap_or_default();
            if !has_commit(ctx, sha) {
                return reply(422, json!({"message": format!("No commit found for SHA: {sha}")}));
            }
            let id = state.next_id;
            state.next_id += 1;
            let mut run = body.clone();
            run["id"] = json!(id);
            run["annotations"] = json!([]);
            absorb_annotations(&mut run, &body);
            state.check_runs.push(run.clone());
            reply(201, run)
        }
        ("patch", "/repos/{owner}/{repo}/check-runs/{check_run_id}") => {
            let id: u64 = param("check_run_id").parse().unwrap_or_default();
            let Some(run) = state.check_runs.iter_mut().find(|run| run["id"] == id) else {
                return reply(404, json!({"message": "Not Found"}));
            };
            for (key, value) in body.as_object().unwrap() {
                if key != "output" {
                    run[key] = value.clone();
                }
            }
            absorb_annotations(run, &body);
            reply(200, run.clone())
        }
        ("post", "/repos/{owner}/{repo}/statuses/{sha}") => {
            let mut status = body.clone();
            status["sha"] = json!(param("sha"));
            state.statuses.push(status.clone());
            reply(201, status)
        }
        ("get", "/repos/{owner}/{repo}/pulls") => {
            let wanted_state = q("state").unwrap_or_else(|| "open".into());
            let head = q("head");
            let pulls: Vec<Value> = state
                .pulls
                .iter()
                .filter(|pr| wanted_state == "all" || pr["state"] == wanted_state.as_str())
                .filter(|pr| {
                    head.as_ref()
                        .is_none_or(|h| format!("{}:{}", param("owner"), pr["head"]["ref"].as_str().unwrap()) == *h)
                })
                .cloned()
                .collect();
            let (pulls, link) = page(pulls);
            reply_page(json!(pulls), link)
        }
        ("post", "/repos/{owner}/{repo}/pulls") => {
            let head = body["head"].as_str().unwrap_or_default();
            let base = body["base"].as_str().unwrap_or_default();
            if branch(ctx, head).is_none() || branch(ctx, base).is_none() {
                return reply(
                    422,
                    json!({"message": "Validation Failed", "errors": [{"field": "head or base", "code": "invalid"}]}),
                );
            }
            if state.pulls.iter().any(|pr| pr["state"] == "open" && pr["head"]["ref"] == head) {
                return reply(422, json!({"message": format!("A pull request already exists for {head}.")}));
            }
            let number = state.next_number;
            state.next_number += 1;
            let pr = json!({"number": number, "state": "open", "title": body["title"], "body": body["body"],
                "html_url": html("pull", number),
                "head": {"ref": head, "repo": {"full_name": repo}}, "base": {"ref": base}});
            state.pulls.push(pr.clone());
            reply(201, pr)
        }
        ("get", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
            let number: u64 = param("pull_number").parse().unwrap_or_default();
            let found = state
                .foreign_pulls
                .iter()
                .find(|pr| pr["base"]["repo"]["full_name"] == repo && pr["number"] == number)
                .or_else(|| state.pulls.iter().find(|pr| pr["number"] == number));
            match found {
                Some(pr) => reply(200, pr.clone()),
                None => reply(404, json!({"message": "Not Found"})),
            }
        }
        ("patch", "/repos/{owner}/{repo}/pulls/{pull_number}") => {
            let number: u64 = param("pull_number").parse().unwrap_or_default();
            let Some(pr) = state.pulls.iter_mut().find(|pr| pr["number"] == number) else {
                return reply(404, json!({"message": "Not Found"}));
            };
            for key in ["title", "body", "state"] {
                if let Some(value) = body.get(key) {
                    pr[key] = value.clone();
                }
            }
            if let Some(base) = body.get("base") {
                pr["base"]["ref"] = base.clone();
            }
            reply(200, pr.clone())
        }
        (_, "/repos/{owner}/{repo}/issues") if state.issues_disabled => {
            reply(410, json!({"message": "Issues are disabled for this repo"}))
        }
        ("get", "/repos/{owner}/{repo}/issues") => {
            // `labels=a,b`: issues carrying every one of them (GitHub lists
            // labels as objects with a name).
            let wanted: Vec<String> =
                q("labels").map(|l| l.split(',').map(str::to_string).collect()).unwrap_or_default();
            let has = |issue: &Value, label: &str| {
                issue["labels"].as_array().is_some_and(|all| all.iter().any(|l| l["name"] == label))
            };
            // GitHub lists pull requests among issues; patchmoi must skip them.
            let mut all: Vec<Value> =
                state.issues.iter().filter(|issue| wanted.iter().all(|label| has(issue, label))).cloned().collect();
            all.extend(state.pulls.iter().map(
                |pr| json!({"number": pr["number"], "body": pr["body"], "state": pr["state"], "pull_request": {}}),
            ));
            let (chunk, link) = page(all);
            reply_page(json!(chunk), link)
        }
        ("post", "/repos/{owner}/{repo}/issues") => {
            if let Some(mut other) = state.issue_opened_meanwhile.take() {
                other["number"] = json!(state.next_number);
                other["id"] = json!(state.next_id);
                state.next_number += 1;
                state.next_id += 1;
                state.issues.push(other);
            }
            let number = state.next_number;
            state.next_number += 1;
            let id = state.next_id;
            state.next_id += 1;
            let labels: Vec<Value> = body["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|label| json!({"name": label.as_str().or(label["name"].as_str())}))
                .collect();
            let issue = json!({"id": id, "number": number, "state": "open", "title": body["title"], "body": body["body"],
                               "labels": labels, "html_url": html("issues", number)});
            state.issues.push(issue.clone());
            if let Some(mut other) = state.issue_opened_after.take() {
                other["number"] = json!(state.next_number);
                other["id"] = json!(state.next_id);
                state.next_number += 1;
                state.next_id += 1;
                state.issues.push(other);
            }
            reply(201, issue)
        }
        ("patch", "/repos/{owner}/{repo}/issues/{issue_number}")
            if state.no_duplicate_reason && body["state_reason"] == "duplicate" =>
        {
            reply(422, json!({"message": "Validation Failed"}))
        }
        ("patch", "/repos/{owner}/{repo}/issues/{issue_number}") => {
            let number: u64 = param("issue_number").parse().unwrap_or_default();
            let Some(issue) = state.issues.iter_mut().find(|issue| issue["number"] == number) else {
                return reply(404, json!({"message": "Not Found"}));
            };
            for (key, value) in body.as_object().unwrap() {
                issue[key] = value.clone();
            }
            reply(200, issue.clone())
        }
        ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
            let number: u64 = param("issue_number").parse().unwrap_or_default();
            let comments: Vec<Value> = state.comments.iter().filter(|c| c["issue"] == number).cloned().collect();
            let (comments, link) = page(comments);
            reply_page(json!(comments), link)
        }
        ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments") => {
            let number: u64 = param("issue_number").parse().unwrap_or_default();
            let comment = json!({"id": state.next_id, "issue": number, "body": body["body"]});
            state.next_id += 1;
            state.comments.push(comment.clone());
            reply(201, comment)
        }
        ("get", "/repos/{owner}/{repo}/collaborators/{username}/permission") => {
            let role = if state.writers.contains(&param("username")) { "write" } else { "read" };
            reply(200, json!({"permission": role, "role_name": role, "user": null}))
        }
        ("delete", "/repos/{owner}/{repo}/git/refs/{ref}") => {
            let name = param("ref");
            match name.strip_prefix("heads/") {
                Some(branch_name) if delete_branch(ctx, branch_name) => reply(204, Value::Null),
                _ => reply(422, json!({"message": "Reference does not exist"})),
            }
        }
        _ => reply(501, json!({"message": format!("the fake does not implement {method} {template}")})),
    }
}

/// Moves `output.annotations` of a request onto the run (GitHub appends
/// them across updates) and keeps the rest of `output`.
fn absorb_annotations(run: &mut Value, body: &Value) {
    let Some(output) = body.get("output") else { return };
    if let Some(notes) = output["annotations"].as_array() {
        run["annotations"].as_array_mut().unwrap().extend(notes.iter().cloned());
    }
    let mut kept = output.clone();
    kept.as_object_mut().unwrap().remove("annotations");
    run["output"] = kept;
}
