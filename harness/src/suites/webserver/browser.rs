//! A real browser loads a page from the server.

use std::fs;
use std::time::Duration;

use super::support::{docroot, Subject};
use crate::suite::{fail, property, Context};

/// Headless Chromium loads a page with a stylesheet and an image from the server;
/// the page's own script reports what was applied and loaded into the DOM.
pub(super) fn chromium_renders_page_with_css_and_image(cx: &mut Context) {
    let Some(chromium) = find_chromium(cx) else {
        return;
    };
    let dir = cx.dir().to_path_buf();
    let root = docroot(&dir);
    fs::create_dir_all(root.join("style")).unwrap();
    fs::create_dir_all(root.join("img")).unwrap();
    fs::write(
        root.join("page.html"),
        r#"<!doctype html><html><head><title>suite page</title>
<link rel="stylesheet" href="style/site.css"></head>
<body><h1 id="title">Hello from the web server suite</h1>
<img id="logo" src="img/logo.svg" alt="logo">
<p id="result">not loaded</p>
<script>
window.addEventListener('load', function () {
  var t = getComputedStyle(document.getElementById('title'));
  var img = document.getElementById('logo');
  document.getElementById('result').textContent =
'color=' + t.color + ' logo=' + img.naturalWidth + 'x' + img.naturalHeight;
});
</script></body></html>
"#,
    )
    .unwrap();
    fs::write(
        root.join("style/site.css"),
        "#title { color: rgb(12, 34, 56); }\n",
    )
    .unwrap();
    fs::write(
        root.join("img/logo.svg"),
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="37" height="23"><rect width="37" height="23" fill="teal"/></svg>"#,
    )
    .unwrap();
    let server = Subject::of(cx).start(&root, &["-t", "2", "-b", "8"]);
    let out = dir.join("dom.html");
    let mut cmd = std::process::Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", dir.join("profile").display()))
    .arg("--dump-dom")
    .arg(format!("http://{}/page.html", server.addr()))
    .stdin(std::process::Stdio::null())
    .stdout(fs::File::create(&out).unwrap())
    .stderr(fs::File::create(dir.join("chromium.log")).unwrap());
    let mut browser = crate::Process::spawn("chromium", &mut cmd).unwrap();
    let status = browser
        .wait_timeout(Duration::from_secs(90))
        .unwrap()
        .expect("chromium did not finish within 90 s");
    let dom = fs::read_to_string(&out).unwrap();
    assert!(status.success(), "chromium failed ({status}); DOM: {dom}");
    assert!(
        dom.contains("Hello from the web server suite"),
        "page not rendered: {dom}"
    );
    assert!(
        dom.contains("color=rgb(12, 34, 56) logo=37x23"),
        "stylesheet or image not loaded as served: {dom}"
    );
}

/// The browser on PATH. Missing, it fails the test saying what to install,
/// unless the user opted out with `DSCONF_SKIP=chromium`, which skips it loudly: on
/// stderr at once, and as a note of the run that the command line shows.
fn find_chromium(cx: &mut Context) -> Option<std::path::PathBuf> {
    if crate::tools::opted_out("chromium") {
        let line = "browser::chromium_renders_page_with_css_and_image \
                    (DSCONF_SKIP=chromium): no browser has loaded a page from the server";
        crate::tools::announce_skip(line);
        cx.note(format!("SKIPPED: {line}"));
        return None;
    }
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = std::path::Path::new(dir).join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    fail(
        property::HARNESS,
        "chromium is not on PATH: install it (Debian: `apt-get install chromium`), or \
         set DSCONF_SKIP=chromium to skip this test",
    );
}
