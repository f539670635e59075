//! The documentation says what the programs do: README.md's "Exit codes" table lists exactly
//! the codes and meanings of the library's table (`zk_coffee::error::exit::TABLE`), which
//! every `--help` prints; its Prometheus configuration and alert rules pass `promtool`.

use zk_coffee::error::exit;
use zk_coffee_tests::Dir;

/// The README at the workspace root.
fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// The `(code, meaning)` rows of the table under `## Exit codes`, with the README's markdown
/// (backticks) taken out of the meanings.
fn readme_exit_codes(readme: &str) -> Vec<(u8, String)> {
    let section = readme.split("\n## Exit codes\n").nth(1).expect("README.md has an \"## Exit codes\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|'))
        .skip(2) // the header and the `| --- |` line
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 2, "an exit-code row has a code and a meaning: {row}");
            let code = cells[0].parse().unwrap_or_else(|_| panic!("{:?} is not an exit code: {row}", cells[0]));
            (code, cells[1].replace('`', ""))
        })
        .collect()
}

#[test]
fn readme_lists_the_exit_codes_of_the_library() {
    let documented = readme_exit_codes(&readme());
    let table: Vec<(u8, String)> = exit::TABLE.iter().map(|(code, _, meaning)| (*code, (*meaning).to_owned())).collect();
    assert_eq!(documented, table, "README.md's exit codes differ from zk_coffee::error::exit::TABLE");
}

#[test]
fn a_code_missing_from_the_readme_is_noticed() {
    let readme = readme();
    let without_ten = readme.replace("| 10 | customer: the barista rejected the order |\n", "");
    assert_ne!(readme_exit_codes(&without_ten).len(), exit::TABLE.len());
}

/// The fenced block of README.md that starts with `# {file}`.
fn readme_block(readme: &str, file: &str) -> String {
    let mut blocks = readme.split("```yaml\n").skip(1).map(|rest| rest.split("```").next().unwrap_or("").to_owned());
    blocks.find(|b| b.starts_with(&format!("# {file}"))).unwrap_or_else(|| panic!("README.md has no yaml block for {file}"))
}

#[test]
fn the_readmes_prometheus_config_and_alert_rules_pass_promtool() {
    let readme = readme();
    let dir = Dir::new("promtool");
    let rules = dir.join("zk-coffee-rules.yml");
    std::fs::write(&rules, readme_block(&readme, "zk-coffee-rules.yml")).expect("write the rules");
    let mut config = readme_block(&readme, "prometheus.yml");
    config.push_str(&format!("rule_files: [\"{}\"]\n", rules.display()));
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write the config");
    for args in [vec!["check", "rules"], vec!["check", "config"]] {
        let file = if args[1] == "rules" { &rules } else { &config_path };
        let out = std::process::Command::new("promtool")
            .args(&args)
            .arg(file)
            .output()
            .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "promtool {} complained:\n{text}", args.join(" "));
    }
}
