//! A self-contained HTML timeline of a checked history: one lane per client, each
//! operation a bar over its interval, the operation that could not be linearized
//! marked, the longest linearizable prefix numbered in its order, faults drawn as
//! vertical lines, and the model state shown when hovering over an operation. No
//! external assets, so the file can be attached to a bug report as it is.

use std::collections::BTreeMap;
use std::fmt::Write;

use specs::Model;

use crate::check::{CheckResult, Verdict};
use crate::history::{History, Outcome};

const LANE: usize = 30;
const LEFT: usize = 90;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Renders the timeline. `title` names the history (a file name, a test name).
pub fn render<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    result: &CheckResult<M::State>,
    title: &str,
) -> String {
    // Times are compressed to their rank so that bursts and lulls both stay readable.
    let mut ranks: BTreeMap<u64, usize> = BTreeMap::new();
    for op in &history.operations {
        ranks.insert(op.call, 0);
        if let Some(r) = op.ret {
            ranks.insert(r, 0);
        }
    }
    for note in &history.annotations {
        ranks.insert(note.time, 0);
    }
    for (k, rank) in ranks.values_mut().enumerate() {
        *rank = k;
    }
    let end = ranks.len() + 1;
    // Wide enough to read labels in short histories, narrow enough to scroll long ones.
    let unit = (1600 / end.max(1)).clamp(14, 90);
    let x = |t: u64| LEFT + ranks[&t] * unit;

    let clients: Vec<u64> = {
        let mut c: Vec<u64> = history.operations.iter().map(|o| o.client).collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    let lane = |client: u64| clients.binary_search(&client).unwrap();

    let failure = result.failure.as_ref();
    let mut order: BTreeMap<usize, usize> = BTreeMap::new();
    if let Some(f) = failure {
        for (k, &i) in f.prefix.iter().enumerate() {
            order.insert(i, k);
        }
    }
    let in_part = |i: usize| failure.is_none_or(|f| f.part.binary_search(&i).is_ok());

    let mut bars = String::new();
    for (i, op) in history.operations.iter().enumerate() {
        let left = x(op.call);
        let right = op.ret.map_or(LEFT + end * unit, x);
        let width = (right - left).max(unit / 2);
        let top = 10 + lane(op.client) * LANE;
        let mut classes = vec!["op"];
        classes.push(match op.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        });
        let mut label = model.describe_operation(&op.input, op.output());
        let mut state = String::new();
        if let Some(&k) = order.get(&i) {
            classes.push("linearized");
            let f = failure.unwrap();
            state = model.describe_state(&f.states[k + 1]);
            label = format!("#{} {label}", k + 1);
        }
        if failure.is_some_and(|f| f.stuck == i) {
            classes.push("stuck");
            let f = failure.unwrap();
            state = format!(
                "cannot be linearized after the prefix; state there: {}",
                model.describe_state(f.states.last().unwrap())
            );
        }
        if !in_part(i) {
            classes.push("other-part");
        }
        let outcome = match op.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Failed => "failed (no effect)",
            Outcome::Unknown => "unknown",
        };
        let _ = writeln!(
            bars,
            r#"<div class="{}" id="op-{i}" data-op="{i}" data-client="{}" data-desc="{}" data-state="{}" data-outcome="{outcome}" title="{}" style="left:{left}px;top:{top}px;width:{width}px">{}</div>"#,
            classes.join(" "),
            op.client,
            escape(&label),
            escape(&state),
            escape(&if state.is_empty() {
                label.clone()
            } else {
                format!("{label}\n{state}")
            }),
            escape(&label),
        );
    }

    let height = 20 + clients.len() * LANE;
    let mut lanes = String::new();
    for (k, c) in clients.iter().enumerate() {
        let _ = writeln!(
            lanes,
            r#"<div class="lane" data-client="{c}" style="top:{}px;height:{LANE}px"><span>client {c}</span></div>"#,
            10 + k * LANE - 4
        );
    }
    let mut notes = String::new();
    for note in &history.annotations {
        let _ = writeln!(
            notes,
            r#"<div class="nemesis" style="left:{}px;height:{height}px" title="{t}"><span>{t}</span></div>"#,
            x(note.time),
            t = escape(&note.text)
        );
    }

    let summary = match failure {
        Some(f) => {
            let stuck = &history.operations[f.stuck];
            format!(
                "<p>The longest linearizable prefix of the failing part has <b>{}</b> of its {} operations (numbered #1..#{} below). \
                 After it, <b class=\"stuck-text\">{}</b> by client {} cannot be placed: its return comes before any order could include it. \
                 Model state after the prefix: <code>{}</code>.</p>",
                f.prefix.len(),
                f.part.len(),
                f.prefix.len(),
                escape(&model.describe_operation(&stuck.input, stuck.output())),
                stuck.client,
                escape(&model.describe_state(f.states.last().unwrap())),
            )
        }
        None => String::new(),
    };
    let mut steps = String::new();
    if let Some(f) = failure {
        steps.push_str("<h2>The failing part, step by step</h2>\n<table id=\"steps\"><tr><th>#</th><th>client</th><th>operation</th><th>state after</th></tr>\n");
        let _ = writeln!(
            steps,
            "<tr><td></td><td></td><td><i>initial</i></td><td><code>{}</code></td></tr>",
            escape(&model.describe_state(&f.states[0]))
        );
        for (k, &i) in f.prefix.iter().enumerate() {
            let op = &history.operations[i];
            let _ = writeln!(
                steps,
                "<tr><td><a href=\"#op-{i}\">{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                k + 1,
                op.client,
                escape(&model.describe_operation(&op.input, op.output())),
                escape(&model.describe_state(&f.states[k + 1]))
            );
        }
        let op = &history.operations[f.stuck];
        let _ = writeln!(
            steps,
            "<tr class=\"stuck-row\"><td><a href=\"#op-{}\">✗</a></td><td>{}</td><td>{}</td><td>cannot be placed here</td></tr>\n</table>",
            f.stuck,
            op.client,
            escape(&model.describe_operation(&op.input, op.output()))
        );
    }
    let verdict_class = match result.verdict {
        Verdict::Ok => "v-ok",
        Verdict::Illegal => "v-illegal",
        Verdict::Unknown => "v-unknown",
    };

    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — {verdict}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 18px; margin: 0 0 6px; }}
.verdict {{ font-weight: bold; padding: 2px 6px; border-radius: 3px; }}
.v-ok {{ background: #d9f2d9; }} .v-illegal {{ background: #f8d0d0; }} .v-unknown {{ background: #f5e6b8; }}
.legend span {{ display: inline-block; padding: 1px 6px; margin-right: 6px; border-radius: 3px; }}
#scroll {{ overflow-x: auto; border: 1px solid #ccc; }}
#timeline {{ position: relative; height: {height}px; width: {width}px; }}
.lane {{ position: absolute; left: 0; right: 0; border-top: 1px solid #eee; }}
.lane span {{ position: sticky; left: 0; font-size: 11px; color: #666; background: #fff; padding-right: 4px; }}
.op {{ position: absolute; height: 20px; line-height: 20px; font-size: 11px; white-space: nowrap; overflow: hidden;
       text-overflow: ellipsis; box-sizing: border-box; padding: 0 3px; border-radius: 3px; cursor: default;
       background: #cfe0f5; border: 1px solid #7ea6d8; }}
.op.unknown {{ background: repeating-linear-gradient(45deg, #eee, #eee 5px, #ddd 5px, #ddd 10px); border-style: dashed; }}
.op.failed {{ background: #eee; color: #999; border-color: #ccc; }}
.op.linearized {{ background: #c8ecc8; border-color: #5aa55a; }}
.op.stuck {{ background: #f44; color: #fff; border: 2px solid #900; font-weight: bold; z-index: 2; }}
.op.other-part {{ opacity: 0.35; }}
.op:hover {{ outline: 2px solid #333; z-index: 3; }}
.nemesis {{ position: absolute; top: 0; border-left: 2px dashed #b36b00; }}
.nemesis span {{ position: absolute; top: -2px; left: 3px; font-size: 10px; color: #b36b00; white-space: nowrap; }}
h2 {{ font-size: 15px; margin: 18px 0 6px; }}
#steps {{ border-collapse: collapse; }} #steps td, #steps th {{ border: 1px solid #ddd; padding: 2px 8px; text-align: left; }}
#steps .stuck-row {{ background: #fdd; font-weight: bold; }}
#tip {{ position: fixed; display: none; background: #333; color: #fff; padding: 6px 8px; border-radius: 4px;
        font: 12px ui-monospace, monospace; white-space: pre-wrap; max-width: 600px; z-index: 10; pointer-events: none; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Model <b>{model}</b>, {ops} operations, {clients} clients, {parts} part(s) checked in {elapsed:.3} s:
<span class="verdict {verdict_class}" id="verdict">{verdict}</span></p>
{summary}
<p class="legend"><span style="background:#c8ecc8">linearized prefix</span><span style="background:#f44;color:#fff">cannot be linearized</span><span style="background:#cfe0f5">completed</span><span style="background:#ddd">unknown outcome</span><span style="background:#eee;color:#999">failed</span> Hover over an operation to see the model state after it.</p>
<div id="scroll"><div id="timeline">
{lanes}{notes}{bars}</div></div>
{steps}
<div id="tip"></div>
<script>
(function () {{
  var tip = document.getElementById('tip');
  document.querySelectorAll('.op').forEach(function (el) {{
    el.addEventListener('mousemove', function (e) {{
      var s = el.dataset.desc + '\n' + el.dataset.outcome;
      if (el.dataset.state) s += '\nstate: ' + el.dataset.state;
      tip.textContent = s; tip.style.display = 'block';
      tip.style.left = (e.clientX + 12) + 'px'; tip.style.top = (e.clientY + 12) + 'px';
    }});
    el.addEventListener('mouseleave', function () {{ tip.style.display = 'none'; }});
  }});
  var stuck = document.querySelector('.op.stuck');
  if (stuck) stuck.scrollIntoView({{block: 'center', inline: 'center'}});
}})();
</script>
</body>
</html>
"#,
        title = escape(title),
        verdict = result.verdict,
        model = model.name(),
        ops = history.len(),
        clients = clients.len(),
        parts = result.parts,
        elapsed = result.elapsed.as_secs_f64(),
        width = LEFT + (end + 2) * unit,
    )
}
