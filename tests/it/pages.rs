//! The status pages over a database filled by a real run: behind the admin
//! token, a browser signs in through a CSRF-protected form and gets a
//! strict, HttpOnly session cookie; hostile tags and messages stay text.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::server::{fake_backend, seeded, serve, TOKEN};

/// A raw HTTP/1.1 exchange: status, head, body.
pub(crate) fn http(url: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|line| line.strip_prefix("set-cookie: "))
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
        .to_string()
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker).unwrap_or_else(|| panic!("no {name} field in {body}")) + marker.len();
    body[start..].split('"').next().unwrap().to_string()
}

const HOSTILE_TAG: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_MESSAGE: &str = "</pre><script>alert('subject')</script>";

#[test]
fn pages_need_a_sign_in_and_escape_what_the_database_holds() {
    let backend = fake_backend();
    let tmp = tempfile::tempdir().unwrap();
    seeded(tmp.path(), &backend);
    {
        use patchmoi::service::store::{Filter, Store};
        let store = Store::open(&tmp.path().join("state")).unwrap();
        let event = patchmoi::flow::event::FlowEvent::upstream_release(
            "openai/codex",
            HOSTILE_TAG,
            "2030-01-01T00:00:00Z".into(),
        );
        store.record_event(&event).unwrap();
        let mut attempt = store.attempts(&Filter::default()).unwrap().remove(0);
        attempt.id = format!("{}:dispatch:1", event.id);
        attempt.event_id = event.id.clone();
        attempt.upstream_tag = Some(HOSTILE_TAG.into());
        attempt.status = patchmoi::service::attempt::AttemptStatus::NeedsIntervention;
        attempt.message = Some(HOSTILE_MESSAGE.into());
        attempt.workspace_run_ids = vec![];
        store.save_attempt(&attempt).unwrap();
    }
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let url = server.url.as_str();

    let (status, head, _) = http(url, "GET", "/attempts?status=changed", &[], "");
    assert_eq!(status, 303, "{head}");
    assert!(head.contains("location: /sign-in?next=%2fattempts%3fstatus%3dchanged"), "{head}");

    let bearer = format!("Bearer {TOKEN}");
    let (status, head, page) = http(url, "GET", "/", &[("authorization", &bearer)], "");
    assert_eq!(status, 200, "{page}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(page.contains("openai/codex") && page.contains("needs_intervention"), "{page}");
    assert!(!page.contains("<img src=x") && !page.contains("<script>alert"), "escaped: {page}");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
    assert!(page.contains("&lt;/pre&gt;&lt;script&gt;"), "the message is shown, escaped: {page}");

    // Sign in: the form's CSRF token is bound to its own cookie.
    let (status, head, form) = http(url, "GET", "/sign-in?next=/attempts", &[], "");
    assert_eq!(status, 200);
    let form_cookie = set_cookie(&head, "patchmoi_form");
    let form_pair = form_cookie.split(';').next().unwrap().to_string();
    let csrf = hidden(&form, "csrf");
    let post = |cookie: &str, body: &str, proto: &str| {
        http(
            url,
            "POST",
            "/sign-in",
            &[("cookie", cookie), ("content-type", "application/x-www-form-urlencoded"), ("x-forwarded-proto", proto)],
            body,
        )
    };
    let (status, _, _) = post(&form_pair, &format!("csrf=forged&token={TOKEN}&next=%2F"), "http");
    assert_eq!(status, 403, "a forged CSRF token");
    let (status, _, _) = post("", &format!("csrf={csrf}&token={TOKEN}&next=%2F"), "http");
    assert_eq!(status, 403, "a token without its cookie");
    let (status, _, page) = post(&form_pair, &format!("csrf={csrf}&token=wrong&next=%2F"), "http");
    assert_eq!(status, 401);
    assert!(page.contains("not the admin token"));
    let (status, head, _) = post(&form_pair, &format!("csrf={csrf}&token={TOKEN}&next=%2F%2Fevil.example"), "https");
    assert_eq!(status, 303);
    assert!(head.contains("location: /\r\n"), "no open redirect: {head}");
    let session = set_cookie(&head, "patchmoi_session");
    assert!(
        session.contains("; httponly") && session.contains("samesite=strict") && session.contains("; secure"),
        "{session}"
    );
    let (_, head, _) = post(&form_pair, &format!("csrf={csrf}&token={TOKEN}&next=%2Fattempts"), "http");
    assert!(head.contains("location: /attempts"), "{head}");
    assert!(!set_cookie(&head, "patchmoi_session").contains("secure"), "Secure only behind HTTPS");
    let session_pair = session.split(';').next().unwrap().to_string();

    let (status, _, page) = http(url, "GET", "/attempts?status=needs_intervention", &[("cookie", &session_pair)], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 attempts, newest first"), "{page}");
    let encoded = "/releases/patch%3Aupstream.release%3Aopenai%2Fcodex%3Arust-v0.131.0";
    let (status, _, page) = http(url, "GET", encoded, &[("cookie", &session_pair)], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("rust-v0.131.0") && page.contains("Dispatches"), "{page}");

    // Sign-out is a POST with the session's CSRF token.
    let (status, _, _) = http(url, "POST", "/sign-out", &[("cookie", &session_pair)], "csrf=nope");
    assert_eq!(status, 403);
    let token = hidden(&page, "csrf");
    let (status, head, _) = http(url, "POST", "/sign-out", &[("cookie", &session_pair)], &format!("csrf={token}"));
    assert_eq!(status, 303);
    assert!(set_cookie(&head, "patchmoi_session").contains("max-age=0"), "{head}");
}
