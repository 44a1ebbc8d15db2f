//! A resolution an agent step makes on a runner outlives the runner: the
//! Action pushes the memory of resolutions to origin with the candidate.

use crate::common::{lines, replace_line, Fixture};

use super::Setup;

#[test]
fn an_agents_resolution_reaches_origin_with_the_candidate() {
    let a = lines("a", 10);
    let fx = Fixture::new(&[("a.txt", &a), ("b.txt", &lines("b", 10))]);
    fx.fork.commit("Fork patch", &[("a.txt", &replace_line(&a, 2, "fork"))]);
    fx.upstream.commit("Upstream change", &[("a.txt", &replace_line(&a, 2, "upstream"))]);
    fx.upstream.git(&["tag", "v1.1.0"]);
    let resolved = replace_line(&a, 2, "upstream and fork");
    fx.install_rebase_flow(&format!(
        "  - name: agent\n    runner: code-mode\n    if: needs_intervention\n    run: |\n      \
         cat > a.txt <<'EOF'\n{}      EOF\n      git add a.txt\n",
        resolved.lines().map(|line| format!("      {line}\n")).collect::<String>()
    ));
    let s = Setup::on(fx);

    let run = s.action(&s.dispatch("v1.1.0"), &[("CODEX_FLOWS_MODE", "code-mode")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(s.output("status"), "changed", "{}", s.outputs());
    let remembered = s.origin.git_output(&["rev-parse", "--verify", "--quiet", "refs/patchmoi/resolutions"]);
    assert!(remembered.status.success(), "origin has the memory of resolutions");
    assert_eq!(
        s.origin.git(&["rev-parse", "refs/patchmoi/resolutions"]),
        s.fx.fork.git(&["rev-parse", "refs/patchmoi/resolutions"])
    );
}
