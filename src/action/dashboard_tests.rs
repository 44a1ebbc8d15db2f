use super::*;

fn row(flow: &str, tag: &str, status: &str, pr: Option<&str>) -> Row {
    Row {
        flow: flow.into(),
        tag: tag.into(),
        status: status.into(),
        pr_url: pr.map(str::to_string),
        updated: "2026-11-30T10:00:00Z".into(),
        ..Row::default()
    }
}

#[test]
fn rows_survive_a_round_trip_through_the_body() {
    let mut board = Board { last_run: "2026-11-30T10:00:00Z".into(), ..Board::default() };
    board.put(row("fork", "v1.1.0", "changed", Some("https://github.example/o/r/pull/1")));
    board.put(row("fork", "v1.2.0", "needs_intervention", None));
    board.put(row("fork", "v1.1.0", "completed", Some("https://github.example/o/r/pull/1")));
    let body = render(&board);
    let back = parse(&body);
    assert_eq!(back.rows.len(), 2, "one row per flow and release");
    assert!(back.rows.iter().any(|r| r.tag == "v1.1.0" && r.status == "completed"));
    assert!(body.contains("- [ ] promote v1.1.0 in flow fork"), "{body}");
    assert!(body.contains("- [ ] retry v1.2.0 in flow fork"), "{body}");
    assert_eq!(parse("no data here"), Board::default());
}

#[test]
fn hostile_subjects_and_paths_stay_inert() {
    let mut board = Board::default();
    let mut bad = row("fork", "v1.2.0", "needs_intervention", None);
    bad.conflict = Some(Conflict {
        patch: "abc1234".into(),
        subject: "x --> <img src=x> @org/team | [link](http://evil)\n- [ ] promote v9 in flow fork".into(),
        files: vec!["a|b\n<!-- -->.txt".into()],
        culprit: Some("def5678 `code` --> end".into()),
    });
    board.put(bad.clone());
    let body = render(&board);
    let data_at = body.find(DATA_OPEN).unwrap();
    let (shown, data) = body.split_at(data_at);
    assert!(!shown.contains("<img") && !shown.contains("<!--") && !shown.contains("@org"), "{shown}");
    assert!(!shown.contains("](http"), "{shown}");
    assert_eq!(shown.lines().filter(|l| l.starts_with("- [ ]")).count(), 1, "only the retry box:\n{shown}");
    assert_eq!(data.matches("-->").count(), 1, "only the comment's own end:\n{data}");
    assert_eq!(parse(&body).rows[0], bad, "read back as written");
    insta::assert_snapshot!(shown);
}

#[test]
fn only_boxes_that_went_from_unticked_to_ticked_count() {
    let before =
        "- [ ] promote v1.1.0 in flow fork\n- [x] retry v1.0.0 in flow fork\n- [ ] retry v1.2.0 in flow fork\n";
    let cases: &[(&str, Vec<(Verb, &str)>)] = &[
        (before, vec![]),
        (
            "- [x] promote v1.1.0 in flow fork\n- [x] retry v1.0.0 in flow fork\n- [ ] retry v1.2.0 in flow fork\n",
            vec![(Verb::Promote, "v1.1.0")],
        ),
        (
            "- [X] promote v1.1.0 in flow fork\n- [x] retry v1.2.0 in flow fork\n",
            vec![(Verb::Promote, "v1.1.0"), (Verb::Retry, "v1.2.0")],
        ),
        // A box someone typed in, not one that was there unticked.
        ("- [x] promote v9.9.9 in flow fork\n", vec![]),
        ("- [x] promote v1.1.0 in flow fork and more\n", vec![]),
    ];
    for (after, want) in cases {
        let got = ticked(before, after);
        let got: Vec<(Verb, &str)> = got.iter().map(|t| (t.verb, t.tag.as_str())).collect();
        assert_eq!(&got, want, "{after}");
    }
}
