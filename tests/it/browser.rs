//! The status pages in a real browser: headless Chromium, driven through
//! chromedriver's W3C WebDriver API (a few JSON requests over a plain
//! TcpStream), signs in through the form, reads the overview and a
//! conflicted release's page over a database filled by real runs, and
//! saves screenshots in `target/screenshots/` (the overview, the release,
//! and its conflict report). Without chromium and
//! chromedriver it is skipped with a message, and fails when `CI` is set.
//!
//! `cargo test --test it browser -- --nocapture`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::common::{lines, replace_line, Fixture};
use crate::server::{serve, TOKEN};

/// An element reference's key in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser and its driver, from PATH; None (with why) when missing.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let find = |names: &[&str]| {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |name| dir.join(name))).find(|p| p.is_file())
    };
    // Debian's chromium; GitHub's Ubuntu runners ship Chrome with a
    // chromedriver of its version, so Chrome comes before their Chromium.
    let chromium =
        find(&["chromium", "google-chrome", "chromium-browser"]).ok_or("chromium (or google-chrome) is not on PATH")?;
    let driver = find(&["chromedriver"]).ok_or("chromedriver is not on PATH")?;
    Ok((chromium, driver))
}

struct Driver {
    child: Child,
    address: String,
    session: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = exchange(&self.address, "DELETE", &format!("/session/{}", self.session), None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One WebDriver request: the `value` of the JSON answer, or the error.
fn exchange(address: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(address).map_err(|err| format!("chromedriver at {address}: {err}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|err| err.to_string())?;
    // chromedriver keeps the connection open whatever we ask: read the
    // head, then exactly Content-Length bytes (it writes `Content-Length:250`).
    let mut reader = BufReader::new(stream);
    let (mut head, mut length) = (String::new(), 0);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|err| err.to_string())?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().map_err(|_| format!("bad length: {line}"))?;
            }
        }
        head.push_str(&line);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(|err| err.to_string())?;
    let json: Value =
        serde_json::from_slice(&body).map_err(|err| format!("{err}: {}", String::from_utf8_lossy(&body)))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{method} {path}: {head}\n{json}"));
    }
    Ok(json["value"].clone())
}

impl Driver {
    fn start(chromium: &Path, driver: &Path, profile: &Path) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let address = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while exchange(&address, "GET", "/status", None).map(|v| v["ready"] == true) != Ok(true) {
            assert!(Instant::now() < deadline, "chromedriver did not get ready on {address}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1280,900",
        ];
        let mut args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut driver = Driver { child, address, session: String::new() };
        let created = driver.call("POST", "/session", Some(capabilities));
        driver.session = created["sessionId"].as_str().expect("a session id").to_string();
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        exchange(&self.address, method, path, body.as_ref()).unwrap_or_else(|err| panic!("{err}"))
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn go(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    fn find(&self, using: &str, value: &str) -> String {
        let found = self.session("POST", "/element", Some(json!({ "using": using, "value": value })));
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no element {value}: {found}")).to_string()
    }

    /// The rendered text of an element, as a person reads it.
    fn text(&self, element: &str) -> String {
        self.session("GET", &format!("/element/{element}/text"), None).as_str().unwrap().to_string()
    }

    fn source(&self) -> String {
        self.session("GET", "/source", None).as_str().unwrap().to_string()
    }

    fn url(&self) -> String {
        self.session("GET", "/url", None).as_str().unwrap().to_string()
    }

    /// Clicks `element` and waits until the page it leads to has loaded
    /// (its URL satisfies `arrived` and the document is complete): a click
    /// that submits a form or follows a link may return before the
    /// navigation commits on a busy machine.
    fn click_to(&self, element: &str, arrived: impl Fn(&str) -> bool) {
        self.session("POST", &format!("/element/{element}/click"), Some(json!({})));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let url = self.url();
            let ready = self.session(
                "POST",
                "/execute/sync",
                Some(json!({"script": "return document.readyState", "args": []})),
            );
            if arrived(&url) && ready == json!("complete") {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the click did not lead on: still at {url} ({ready})");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn screenshot(&self, file: &Path) {
        self.save_png(self.session("GET", "/screenshot", None), file);
    }

    /// A screenshot of one element, scrolled into view.
    fn element_screenshot(&self, element: &str, file: &Path) {
        // chromedriver scrolls only until the element's end shows, and cuts
        // the shot at the viewport: bring its top to the top first.
        let script = json!({"script": "arguments[0].scrollIntoView(true)", "args": [{ ELEMENT: element }]});
        self.session("POST", "/execute/sync", Some(script));
        self.save_png(self.session("GET", &format!("/element/{element}/screenshot"), None), file);
    }

    fn save_png(&self, png: Value, file: &Path) {
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, bytes).unwrap();
        eprintln!("screenshot: {}", file.display());
    }
}

/// A clean release (v1.1.0) and a conflicted one (v2.0.0: upstream
/// rewrote the line the fork's patch changes), run for real into `data`.
pub(crate) fn two_releases(data: &Path) -> Fixture {
    let fx = Fixture::released();
    fx.install_rebase_flow("");
    let env = [("DATA_DIR", data.to_str().unwrap()), ("CODEX_WORKSPACE_MODE", "actions")];
    let args = ["run", "upstream-release", "--repo", "test/upstream", "--json", "--tag"];
    let run = fx.patchmoi(&[&args[..], &["v1.1.0"]].concat(), &env);
    assert_eq!(run.json()["status"], "changed", "{}", run.stderr);
    fx.upstream.commit("Rewrite a.txt's second line", &[("a.txt", &replace_line(&lines("a", 10), 2, "upstream"))]);
    fx.upstream.git(&["tag", "v2.0.0"]);
    let run = fx.patchmoi(&[&args[..], &["v2.0.0"]].concat(), &env);
    assert_eq!(run.json()["status"], "needs_intervention", "{}", run.stderr);
    fx
}

#[test]
fn a_browser_signs_in_and_sees_the_overview_and_a_conflicted_release() {
    let (chromium, chromedriver) = match tools() {
        Ok(found) => found,
        Err(why) if std::env::var_os("CI").is_some() => panic!("{why}: CI runs the browser test"),
        Err(why) => {
            eprintln!("skipped: {why} (apt-get install chromium chromium-driver)");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let fx = two_releases(&tmp.path().join("state"));
    let server = serve(tmp.path(), &[("PATCH_ADMIN_TOKEN", TOKEN)]);
    let driver = Driver::start(&chromium, &chromedriver, &tmp.path().join("profile"));

    // Not signed in: the overview sends the browser to the form.
    driver.go(&format!("{}/", server.url));
    assert!(driver.url().contains("/sign-in?next=%2F"), "{}", driver.url());
    let token = driver.find("css selector", "input[name=token]");
    driver.session("POST", &format!("/element/{token}/value"), Some(json!({ "text": TOKEN })));
    let submit = driver.find("css selector", "main button[type=submit]");
    let home = format!("{}/", server.url);
    driver.click_to(&submit, |url| url == home);

    let overview = driver.source();
    assert_eq!(driver.url(), format!("{}/", server.url), "{overview}");
    assert!(overview.contains("<h1>Overview</h1>") && overview.contains("test/upstream"), "{overview}");
    assert!(overview.contains("needs_intervention") && overview.contains("v1.1.0"), "last good: {overview}");
    assert!(overview.contains("Sign out"), "signed in: {overview}");
    // The flow's row: blocked on the fork's patch, by upstream's rewrite.
    let flows = driver.text(&driver.find("xpath", "//table[caption[contains(., 'Flows')]]"));
    assert!(flows.contains("fork") && flows.contains("needs_intervention"), "{flows}");
    assert!(flows.contains("patch") && flows.contains("Fork patch"), "the blocking patch: {flows}");
    assert!(flows.contains("culprit: upstream commit") && flows.contains("Rewrite a.txt"), "{flows}");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    driver.screenshot(&shots.join("overview.png"));

    // The conflicted release, reached as a person would: by its link.
    let link = driver.find("link text", "v2.0.0");
    driver.click_to(&link, |url| url.contains("/releases/"));
    let release = driver.source();
    assert!(driver.url().contains("/releases/"), "{}", driver.url());
    assert!(release.contains("test/upstream v2.0.0") && release.contains("needs_intervention"), "{release}");
    assert!(release.contains("culprit: upstream commit") && release.contains("Rewrite a.txt"), "{release}");
    assert!(release.contains("a.txt"), "the conflicting file: {release}");
    // The conflict report itself: the hunk with both sides, the culprit
    // linked to its upstream commit, the survey.
    let report = driver.text(&driver.find("css selector", "section.report"));
    assert!(report.contains("Fork patch") && report.contains("File a.txt"), "{report}");
    let hunk = driver.text(&driver.find("css selector", "section.report table.hunk"));
    assert!(hunk.contains("Release (upstream)") && hunk.contains("Patch"), "{hunk}");
    // The release's side, then the patch's: the line each rewrote.
    assert!(hunk.contains("Release (upstream) Patch\nupstream\nfork"), "both sides of the hunk: {hunk}");
    let culprit = driver.find("css selector", "section.report dd a[href*='/commit/']");
    let href = driver.session("GET", &format!("/element/{culprit}/attribute/href"), None);
    let culprit_sha = fx.upstream.git(&["rev-parse", "v2.0.0"]).trim().to_string();
    assert_eq!(href, json!(format!("https://github.com/test/upstream/commit/{culprit_sha}")), "culprit link");
    assert!(report.contains("Survey"), "{report}");
    driver.screenshot(&shots.join("release.png"));
    driver.element_screenshot(&driver.find("css selector", "section.report"), &shots.join("conflict-report.png"));
    drop(fx);
}
