//! The skip mechanism of the interoperability tests (`util::tools`), tested as a developer
//! meets it: this test binary runs some of its own interoperability tests again in a child
//! process whose PATH holds no program at all, so every reference tool is missing. And the
//! install script knows every tool the tests ask for.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::tools::{INSTALL_SCRIPT, REQUIRE_VAR, Tool, needs, skip_line};
use crate::util::{Out, TestCommand, temp_dir};

/// Tests whose first step is `require_tool`: an `age` test, one needing `age` then `script`,
/// and a `bsdtar` one.
const INTEROP_TESTS: [(&str, Tool); 3] = [
    (
        "age_interop::age_cli_decrypts_an_object_with_the_external_identity_file",
        Tool::Age,
    ),
    (
        "age_interop::age_cli_decrypts_an_object_with_the_vault_identity_file_and_the_passphrase",
        Tool::Age,
    ),
    (
        "zips::bsdtar_reads_bundles_and_backups_from_a_pipe",
        Tool::Bsdtar,
    ),
];

/// This test binary running exactly `tests`, with an empty folder as PATH, and
/// CARNET_REQUIRE_INTEROP set to `require` (or unset).
fn without_tools(tests: &[&str], require: Option<&str>) -> Out {
    let empty = temp_dir("carnet-no-tools-");
    let mut c = Command::new(std::env::current_exe().expect("the test binary's path"));
    c.arg("--exact").args(tests).env("PATH", empty.path());
    match require {
        Some(v) => c.env(REQUIRE_VAR, v),
        None => c.env_remove(REQUIRE_VAR),
    };
    TestCommand::from(c).run()
}

#[test]
fn without_its_tool_an_interop_test_is_skipped_with_one_line_and_the_run_ends_with_a_summary() {
    let names: Vec<&str> = INTEROP_TESTS.iter().map(|(t, _)| *t).collect();
    let out = without_tools(&names, None).ok();
    assert!(
        out.text().contains("test result: ok. 3 passed; 0 failed"),
        "the skipped tests pass{out}"
    );
    let (lines, summary) = out
        .stderr
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("the skip lines, then the summary{out}"));
    let mut shown: Vec<&str> = lines.lines().collect();
    shown.sort_unstable();
    let mut expected: Vec<String> = INTEROP_TESTS
        .iter()
        .map(|(t, k)| skip_line(t, *k))
        .collect();
    expected.sort_unstable();
    assert_eq!(shown, expected, "one line per skipped test{out}");
    assert_eq!(
        shown[0],
        "skipped age_interop::age_cli_decrypts_an_object_with_the_external_identity_file: needs \
         `age` (install: .ci/install-tools, or apt-get install age)"
    );
    assert_eq!(
        summary,
        "3 tests skipped: the reference tools they would run are missing \
         (CARNET_REQUIRE_INTEROP=1 makes that a failure)\n  \
         2 need `age`, 1 needs `bsdtar`\n  \
         install: .ci/install-tools, or apt-get install age libarchive-tools\n",
        "the summary, after libtest's result line{out}"
    );
}

#[test]
fn under_carnet_require_interop_a_missing_tool_fails_the_test() {
    let (test, tool) = INTEROP_TESTS[2];
    let out = without_tools(&[test], Some("1"));
    out.assert_code(101, "the test fails");
    let expected = format!(
        "{test} {}, and CARNET_REQUIRE_INTEROP=1 makes a missing reference tool a failure",
        needs(tool)
    );
    assert!(out.text().contains(&expected), "{expected}{out}");
    assert!(
        out.text()
            .contains("test result: FAILED. 0 passed; 1 failed"),
        "{out}"
    );
    assert!(
        !out.stderr.contains("skipped"),
        "nothing was skipped, so no skip line nor summary{out}"
    );

    // A value that is neither 1 nor 0 is not taken for either.
    let out = without_tools(&[test], Some("yes"));
    out.assert_code(101, "a bad value fails the test");
    assert!(
        out.text()
            .contains("CARNET_REQUIRE_INTEROP must be 1 or 0, not \"yes\""),
        "{out}"
    );
}

#[test]
fn the_install_script_installs_every_tool_the_tests_ask_for() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(INSTALL_SCRIPT);
    let script = fs::read_to_string(&path).unwrap();
    let (_, list) = script
        .split_once("\ntools=(\n")
        .unwrap_or_else(|| panic!("no `tools=(` list in {}", path.display()));
    let (list, _) = list.split_once("\n)").expect("the `tools=(` list ends");
    let listed: Vec<&str> = list.lines().map(str::trim).collect();
    let asked: Vec<String> = Tool::ALL.iter().map(|t| t.install_line()).collect();
    assert_eq!(
        listed, asked,
        "{INSTALL_SCRIPT} and util::tools::Tool disagree"
    );
}
