//! The action's install step (dist/install.sh) run as a runner runs it,
//! against release assets served over HTTPS from 127.0.0.1, with stub
//! `cargo` and `rustup` first on PATH that record every call: the default
//! path downloads and verifies without compiling, a tampered asset fails the
//! step naming both hashes, and only a missing platform or asset (or
//! `version: source`) builds from source.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const VERSION: &str = "v0.1.0";
const TARGET: &str = "x86_64-unknown-linux-musl";
const ASSET: &str = "patchmoi-x86_64-unknown-linux-musl.tar.gz";
const RUST_VERSION: &str = "1.89";

/// A python3 HTTPS file server on 127.0.0.1 that prints its port, then stops
/// by itself after two minutes should the test never kill it.
const SERVER: &str = r#"
import functools, http.server, ssl, sys, threading
root, cert, key = sys.argv[1:4]
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Timer(120, server.shutdown).start()
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Records its arguments, then "builds" patchmoi: writes `<root>/bin/patchmoi`.
const STUB: &str = r#"#!/bin/sh
echo "$(basename "$0") $*" >> "$STUB_LOG"
if [ "$(basename "$0")" = rustup ]; then
  [ "$1" = run ] || exit 0
  shift 2
fi
root=
while [ $# -gt 0 ]; do
  if [ "$1" = --root ]; then root=$2; fi
  shift
done
[ -n "$root" ] || exit 0
mkdir -p "$root/bin"
printf '#!/bin/sh\necho "patchmoi 0.1.0 (built from source)"\n' > "$root/bin/patchmoi"
chmod +x "$root/bin/patchmoi"
"#;

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn sha256_hex(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A release tarball like the real ones: `patchmoi` at the top, here a
/// shell script that prints a version.
fn tarball(dir: &Path, name: &str, says: &str) -> PathBuf {
    let stage = dir.join(format!("stage-{name}"));
    std::fs::create_dir_all(&stage).unwrap();
    write_executable(&stage.join("patchmoi"), &format!("#!/bin/sh\necho \"{says}\"\n"));
    let path = dir.join(name);
    run_ok(Command::new("tar").arg("-czf").arg(&path).arg("-C").arg(&stage).arg("patchmoi"));
    path
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything one install needs: the served release folder, the action's
/// pinned dist/ files, stubs, a runner temp dir and the server.
struct Runner {
    dir: tempfile::TempDir,
    server: Server,
    cert: PathBuf,
}

impl Runner {
    fn new() -> Runner {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for sub in ["served", "action/dist", "stubs", "rustup-only", "runner-temp", "home"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        for stub in ["cargo", "rustup"] {
            write_executable(&root.join("stubs").join(stub), STUB);
        }
        write_executable(&root.join("rustup-only/rustup"), STUB);
        std::fs::write(
            root.join("action/Cargo.toml"),
            format!("[package]\nname = \"patchmoi\"\nrust-version = \"{RUST_VERSION}\"\n"),
        )
        .unwrap();

        let (cert, key) = (root.join("cert.pem"), root.join("key.pem"));
        let openssl = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl CLI makes the test server's certificate");
        assert!(openssl.status.success(), "openssl: {}", String::from_utf8_lossy(&openssl.stderr));

        let mut child = Command::new("python3")
            .arg("-c")
            .arg(SERVER)
            .arg(root.join("served"))
            .arg(&cert)
            .arg(&key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 serves the release assets");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut port).unwrap();
        let server = Server { child, base: format!("https://127.0.0.1:{}", port.trim()) };
        Runner { dir, server, cert }
    }

    fn path(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Serves a release's tarball (and SHA256SUMS) under `<base>/<version>/`;
    /// returns the tarball's SHA-256.
    fn serve(&self, version: &str, says: &str, sums: bool) -> String {
        let folder = self.path("served").join(version);
        std::fs::create_dir_all(&folder).unwrap();
        let asset = tarball(&folder, ASSET, says);
        let hash = sha256_hex(&asset);
        if sums {
            std::fs::write(folder.join("SHA256SUMS"), format!("{hash}  {ASSET}\n")).unwrap();
        }
        hash
    }

    /// What the release workflow commits into the action: dist/VERSION and dist/SHA256SUMS.
    fn pin(&self, version: &str, hash: &str) {
        std::fs::write(self.path("action/dist/VERSION"), format!("{version}\n")).unwrap();
        let sums = format!("{hash}  {ASSET}\n{}  patchmoi-aarch64-apple-darwin.tar.gz\n", "0".repeat(64));
        std::fs::write(self.path("action/dist/SHA256SUMS"), sums).unwrap();
    }

    /// PATH: the stubs, then the runner's PATH without any real cargo or rustup.
    fn search_path(&self, stubs: &str) -> String {
        let mut dirs = vec![self.path(stubs)];
        let inherited = std::env::var_os("PATH").unwrap_or_default();
        dirs.extend(
            std::env::split_paths(&inherited).filter(|dir| !dir.join("cargo").exists() && !dir.join("rustup").exists()),
        );
        std::env::join_paths(dirs).unwrap().into_string().unwrap()
    }

    fn install(&self, arch: &str, version: &str, stubs: &str) -> Install {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/install.sh");
        let started = Instant::now();
        let output = Command::new("bash")
            .arg(script)
            .env_clear()
            .env("PATH", self.search_path(stubs))
            .env("HOME", self.path("home"))
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", arch)
            .env("RUNNER_TEMP", self.path("runner-temp"))
            .env("GITHUB_ACTION_PATH", self.path("action"))
            .env("GITHUB_SERVER_URL", "https://github.invalid")
            .env("PATCHMOI_ACTION_REPOSITORY", "peezy-tech/patchmoi")
            .env("PATCHMOI_VERSION", version)
            .env("PATCHMOI_DOWNLOAD_BASE", &self.server.base)
            .env("CURL_CA_BUNDLE", &self.cert)
            .env("STUB_LOG", self.path("stub.log"))
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        let stubs_called = std::fs::read_to_string(self.path("stub.log")).unwrap_or_default();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Install { success: output.status.success(), text, elapsed, stubs_called }
    }

    /// Runs the installed binary the way action.yml's run step does.
    fn installed_says(&self) -> String {
        let output = Command::new(self.path("runner-temp/patchmoi/bin/patchmoi")).arg("--version").output().unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_string()
    }
}

#[derive(Debug)]
struct Install {
    success: bool,
    text: String,
    elapsed: Duration,
    stubs_called: String,
}

#[test]
fn default_inputs_download_and_verify_the_pinned_release_without_compiling() {
    let runner = Runner::new();
    let hash = runner.serve(VERSION, "patchmoi 0.1.0 (release asset)", true);
    runner.pin(VERSION, &hash);

    let install = runner.install("X64", "", "stubs");
    eprintln!("install of the pinned release took {:?}", install.elapsed);

    assert!(install.success, "{install:#?}");
    assert_eq!(install.stubs_called, "", "nothing compiled");
    assert!(install.text.contains(&format!("installed patchmoi {VERSION} ({TARGET}, SHA-256 {hash})")), "{install:#?}");
    assert_eq!(runner.installed_says(), "patchmoi 0.1.0 (release asset)");
    assert!(install.elapsed < Duration::from_secs(10), "the install step took {:?}", install.elapsed);
}

#[test]
fn a_tampered_asset_fails_the_step_naming_both_hashes() {
    let runner = Runner::new();
    let pinned = runner.serve(VERSION, "patchmoi 0.1.0 (release asset)", true);
    runner.pin(VERSION, &pinned);
    let served = runner.serve(VERSION, "patchmoi 0.1.0 (tampered)", true);
    assert_ne!(pinned, served);

    let install = runner.install("X64", "", "stubs");

    assert!(!install.success, "{install:#?}");
    assert!(install.text.contains("::error::"), "{install:#?}");
    assert!(install.text.contains(&format!("expected SHA-256 {pinned}, got {served}")), "{install:#?}");
    assert_eq!(install.stubs_called, "", "a mismatch never falls back to a source build");
    assert!(!runner.path("runner-temp/patchmoi/bin/patchmoi").exists());
}

#[test]
fn a_platform_without_an_asset_builds_from_source_with_a_notice() {
    let runner = Runner::new();
    let hash = runner.serve(VERSION, "patchmoi 0.1.0 (release asset)", true);
    runner.pin(VERSION, &hash);

    let install = runner.install("S390X", "", "stubs");

    assert!(install.success, "{install:#?}");
    assert!(install.text.contains("::notice::no prebuilt patchmoi for Linux-S390X"), "{install:#?}");
    let action = runner.path("action");
    let dest = runner.path("runner-temp/patchmoi");
    assert_eq!(
        install.stubs_called,
        format!("cargo install --locked --path {} --root {}\n", action.display(), dest.display())
    );
    assert_eq!(runner.installed_says(), "patchmoi 0.1.0 (built from source)");
}

#[test]
fn a_missing_asset_builds_from_source_with_a_notice() {
    let runner = Runner::new();
    runner.pin(VERSION, &"1".repeat(64)); // pinned, but the release never got the asset

    let install = runner.install("X64", "", "stubs");

    assert!(install.success, "{install:#?}");
    assert!(install.text.contains(&format!("::notice::patchmoi {VERSION} has no {ASSET} (HTTP 404)")), "{install:#?}");
    assert!(install.stubs_called.starts_with("cargo install --locked"), "{install:#?}");
    assert_eq!(runner.installed_says(), "patchmoi 0.1.0 (built from source)");
}

#[test]
fn version_source_builds_the_actions_source() {
    let runner = Runner::new();
    let hash = runner.serve(VERSION, "patchmoi 0.1.0 (release asset)", true);
    runner.pin(VERSION, &hash);

    let install = runner.install("X64", "source", "stubs");

    assert!(install.success, "{install:#?}");
    assert!(install.text.contains("::notice::version: source"), "{install:#?}");
    assert!(install.stubs_called.starts_with("cargo install --locked"), "{install:#?}");
    assert_eq!(runner.installed_says(), "patchmoi 0.1.0 (built from source)");
}

#[test]
fn without_cargo_the_source_build_installs_the_pinned_toolchain() {
    let runner = Runner::new();
    runner.pin(VERSION, &"1".repeat(64));

    let install = runner.install("S390X", "", "rustup-only");

    assert!(install.success, "{install:#?}");
    assert!(install.text.contains(&format!("installing Rust {RUST_VERSION} with rustup")), "{install:#?}");
    let calls: Vec<&str> = install.stubs_called.lines().collect();
    assert_eq!(calls[0], format!("rustup toolchain install --profile minimal {RUST_VERSION}"));
    assert!(calls[1].starts_with(&format!("rustup run {RUST_VERSION} cargo install --locked")), "{calls:?}");
    assert_eq!(runner.installed_says(), "patchmoi 0.1.0 (built from source)");
}

#[test]
fn another_release_is_checked_against_its_own_sha256sums() {
    let runner = Runner::new();
    let pinned = runner.serve(VERSION, "patchmoi 0.1.0 (release asset)", true);
    runner.pin(VERSION, &pinned);
    let older = runner.serve("v0.0.9", "patchmoi 0.0.9 (release asset)", true);

    let install = runner.install("X64", "v0.0.9", "stubs");

    assert!(install.success, "{install:#?}");
    assert!(install.text.contains(&format!("installed patchmoi v0.0.9 ({TARGET}, SHA-256 {older})")), "{install:#?}");
    assert_eq!(install.stubs_called, "");
    assert_eq!(runner.installed_says(), "patchmoi 0.0.9 (release asset)");
}
