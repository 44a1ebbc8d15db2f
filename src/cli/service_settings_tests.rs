//! Resolution of the service settings: the workspace backend's URL and
//! secret, and the HTTP limits.

use super::*;

#[test]
fn url_and_secret_resolution_order() {
    let all = Env::from_pairs([
        ("PATCH_WORKSPACE_BACKEND_URL", "http://a/"),
        ("PATCH_FLOW_BACKEND_URL", "http://b"),
        ("PATCH_FLOW_DISPATCH_URL", "http://c/events"),
        ("PATCH_FLOW_DISPATCH_SECRET", "old"),
        ("MY_URL", "http://mine/events"),
    ]);
    let resolve = |spec: BackendSpec, env: &Env| backend(&spec, env).map(|b| (b.events_url(), b.secret));
    assert_eq!(resolve(BackendSpec::default(), &all), Some(("http://a/events".into(), Some("old".into()))));
    let spec = BackendSpec { url_env: Some("MY_URL"), ..BackendSpec::default() };
    assert_eq!(resolve(spec, &all).unwrap().0, "http://mine/events");
    let spec = BackendSpec { url: Some("http://direct"), ..BackendSpec::default() };
    assert_eq!(resolve(spec, &all).unwrap().0, "http://direct/events");
    let b_and_c =
        Env::from_pairs([("PATCH_FLOW_BACKEND_URL", "http://b"), ("PATCH_FLOW_DISPATCH_URL", "http://c/events")]);
    assert_eq!(resolve(BackendSpec::default(), &b_and_c), Some(("http://b/events".into(), None)));
    let c =
        Env::from_pairs([("PATCH_FLOW_DISPATCH_URL", "http://c/events"), ("PATCH_WORKSPACE_BACKEND_SECRET", "new")]);
    assert_eq!(resolve(BackendSpec::default(), &c), Some(("http://c/events".into(), Some("new".into()))));
    assert!(resolve(BackendSpec::default(), &Env::default()).is_none());
    let debug = format!("{:?}", backend(&BackendSpec::default(), &c).unwrap());
    assert!(!debug.contains("new"), "{debug}");
}

#[test]
fn limits_come_from_the_environment_and_reject_nonsense() {
    let env = Env::from_pairs([("PATCH_HTTP_HEADER_TIMEOUT", "2s"), ("PATCH_HTTP_MAX_CONNECTIONS", "3")]);
    let resolved = limits(&env).unwrap();
    assert_eq!(resolved.header_timeout, Duration::from_secs(2));
    assert_eq!(resolved.max_connections, 3);
    assert_eq!(resolved.body_timeout, Limits::default().body_timeout);
    for (name, value) in [("PATCH_HTTP_BODY_TIMEOUT", "soon"), ("PATCH_HTTP_MAX_BODY", "0")] {
        let err = limits(&Env::from_pairs([(name, value)])).unwrap_err();
        assert!(format!("{err:#}").contains(name), "{err:#}");
    }
}
