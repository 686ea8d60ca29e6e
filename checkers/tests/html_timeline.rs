//! The HTML timeline of a failing history is self-contained and marks the failure.

mod common;

use checkers::{check, formats, html, CheckOptions, Verdict};

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// The class lists of the operation bars.
fn bar_classes(page: &str) -> Vec<Vec<&str>> {
    page.lines()
        .filter_map(|l| l.strip_prefix("<div class=\"op "))
        .map(|rest| rest[..rest.find('"').unwrap()].split_whitespace().collect())
        .collect()
}

#[test]
fn c01_bad_timeline_marks_the_operation_that_cannot_be_placed() {
    let Some(dir) = common::porcupine_data() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("kv/c01-bad.txt")).unwrap();
    let (_, history) = formats::parse(&specs::Kv, &text).unwrap();
    let result = check(&specs::Kv, &history, &CheckOptions::default());
    assert_eq!(result.verdict, Verdict::Illegal);
    let failure = result.failure.as_ref().unwrap();
    let page = html::render(&specs::Kv, &history, &result, "c01-bad.txt");

    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained: nothing is fetched.
    for external in ["http://", "https://", " src=", "<link", "@import", "url("] {
        assert!(
            !page.contains(external),
            "the page refers to something outside it: {external}"
        );
    }
    // One lane per client, one bar per operation.
    let clients: std::collections::BTreeSet<u64> =
        history.operations.iter().map(|o| o.client).collect();
    assert_eq!(count(&page, "<div class=\"lane\""), clients.len());
    assert_eq!(count(&page, "<div class=\"op "), history.len());
    // Exactly one operation is marked, and it is the one the checker names.
    let classes = bar_classes(&page);
    assert_eq!(classes.iter().filter(|c| c.contains(&"stuck")).count(), 1);
    let marked = format!("class=\"op ok stuck\" id=\"op-{}\"", failure.stuck);
    assert!(page.contains(&marked), "{marked} missing");
    // The prefix is numbered, and every linearized operation carries its state.
    assert_eq!(
        classes.iter().filter(|c| c.contains(&"linearized")).count(),
        failure.prefix.len()
    );
    for (k, &i) in failure.prefix.iter().enumerate() {
        let bar = page
            .lines()
            .find(|l| l.contains(&format!("id=\"op-{i}\"")))
            .unwrap();
        assert!(bar.contains(&format!("#{} ", k + 1)), "{bar}");
        assert!(!bar.contains("data-state=\"\""), "no state on {bar}");
    }
    // The verdict is on the page.
    assert!(page.contains("id=\"verdict\">Illegal"));
}

#[test]
fn text_from_the_history_is_escaped() {
    let log = "{:process 0, :type :invoke, :f :put, :key \"<b>\", :value \"</div><script>x</script>\"}\n\
               {:process 0, :type :ok, :f :put, :key \"<b>\", :value \"</div><script>x</script>\"}\n";
    let (_, history) = formats::parse(&specs::Kv, log).unwrap();
    let result = check(&specs::Kv, &history, &CheckOptions::default());
    let page = html::render(&specs::Kv, &history, &result, "<title>");
    assert!(!page.contains("<script>x"));
    assert!(page.contains("&lt;/div&gt;&lt;script&gt;x"));
    assert!(!page.contains("<title><title>"));
}
