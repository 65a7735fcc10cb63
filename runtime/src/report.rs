//! `audit report --html`: one self-contained HTML file (inline CSS and SVG, nothing fetched).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::audit::AuditRecord;
use crate::redact::RedactionPolicy;

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn count_table(title: &str, rows: &BTreeMap<String, usize>) -> String {
    let mut t = format!(
        "<h2>{}</h2><table><tr><th>{}</th><th>calls</th></tr>",
        esc(title),
        esc(title.split(' ').next_back().unwrap_or(""))
    );
    for (k, n) in rows {
        let _ = write!(t, "<tr><td>{}</td><td class=n>{n}</td></tr>", esc(k));
    }
    t.push_str("</table>");
    t
}

/// Renders the report for `records` (already filtered by session / time).
pub fn html(records: &[AuditRecord], policy: &RedactionPolicy, verified: Option<&str>) -> String {
    let calls: Vec<&AuditRecord> = records.iter().filter(|r| r.kind == "call").collect();
    let undos: Vec<&AuditRecord> = records.iter().filter(|r| r.kind == "undo").collect();
    let mut by_cap: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_effect: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for r in &calls {
        *by_cap.entry(r.capability.clone()).or_default() += 1;
        *by_status.entry(r.status.clone()).or_default() += 1;
        for e in r
            .effects
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str())
        {
            *by_effect.entry(e.to_string()).or_default() += 1;
        }
    }
    let destructive: Vec<&&AuditRecord> = calls
        .iter()
        .filter(|r| {
            r.annotations.get("destructiveHint") == Some(&serde_json::Value::Bool(true))
                || r.undo_state == "irreversible"
        })
        .collect();
    let failures: Vec<&&AuditRecord> = calls.iter().filter(|r| r.status != "ok").collect();
    let sessions: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r.session.as_str()).collect();
    let (first, last) = (
        records
            .first()
            .map(|r| r.started_at.as_str())
            .unwrap_or("-"),
        records.last().map(|r| r.ended_at.as_str()).unwrap_or("-"),
    );

    let mut h = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>AI-First Runtime audit report</title><style>\
         body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2430}\
         h1{font-size:22px}h2{font-size:17px;margin-top:1.6em;border-bottom:1px solid #dde}\
         table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #dde;padding:3px 8px;text-align:left}\
         td.n{text-align:right}.cards{display:flex;gap:12px;flex-wrap:wrap}\
         .card{border:1px solid #dde;border-radius:6px;padding:8px 14px;min-width:120px}\
         .card b{display:block;font-size:20px}.bad{color:#b3261e}.ok{color:#1b7f3b}code{font-size:12px}\
         </style></head><body><h1>AI-First Runtime: audit report</h1>",
    );
    let _ = write!(
        h,
        "<p>{} records from {} to {}; {} session(s). Integrity: <span class={}>{}</span>.</p>",
        records.len(),
        esc(first),
        esc(last),
        sessions.len(),
        if verified.is_some_and(|v| v.starts_with("intact")) {
            "ok"
        } else {
            "bad"
        },
        esc(verified.unwrap_or("not checked"))
    );
    let _ = write!(
        h,
        "<div class=cards><div class=card>calls<b id=calls>{}</b></div><div class=card>failed or refused<b id=failed>{}</b></div>\
         <div class=card>destructive or irreversible<b id=destructive>{}</b></div><div class=card>undos<b id=undos>{}</b></div></div>",
        calls.len(),
        failures.len(),
        destructive.len(),
        undos.len()
    );
    h.push_str(&count_table("Calls by capability", &by_cap));
    h.push_str(&count_table("Calls by effect", &by_effect));
    h.push_str(&count_table("Calls by status", &by_status));

    // Timeline: one bar per call, in order, coloured by status.
    let n = calls.len().max(1);
    let width = 1000usize;
    let _ = write!(h, "<h2>Timeline</h2><svg id=timeline xmlns='http://www.w3.org/2000/svg' width={width} height=60 role=img aria-label='calls over time'>");
    let _ = write!(h, "<line x1=0 y1=50 x2={width} y2=50 stroke='#889'/>");
    for (i, r) in calls.iter().enumerate() {
        let x = i * width / n;
        let colour = match r.status.as_str() {
            "ok" => "#1b7f3b",
            "refused" => "#b58900",
            _ => "#b3261e",
        };
        let _ = write!(
            h,
            "<rect x={x} y=10 width={} height=40 fill='{colour}'><title>{} {} {}</title></rect>",
            (width / n).max(1),
            esc(&r.started_at),
            esc(&r.capability),
            esc(&r.status)
        );
    }
    h.push_str("</svg>");

    let list = |title: &str, id: &str, rows: &[&&AuditRecord]| {
        let mut t = format!("<h2>{}</h2><table id={id}><tr><th>#</th><th>time</th><th>session</th><th>client</th><th>capability</th><th>status</th><th>undo</th><th>error</th></tr>", esc(title));
        for r in rows {
            let _ = write!(
                t,
                "<tr><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                r.seq,
                esc(&r.started_at),
                esc(&r.session),
                esc(r.client.as_deref().unwrap_or("")),
                esc(&r.capability),
                esc(&r.status),
                esc(&r.undo_state),
                esc(r.error.as_deref().unwrap_or(""))
            );
        }
        t.push_str("</table>");
        t
    };
    h.push_str(&list(
        "Destructive and irreversible calls",
        "destructive-calls",
        &destructive,
    ));
    h.push_str(&list("Failures and refusals", "failures", &failures));
    let undo_rows: Vec<&&AuditRecord> = undos.iter().collect();
    h.push_str(&list("Undo activity", "undo-activity", &undo_rows));
    let _ = write!(
        h,
        "<h2>Redaction policy</h2><p>Values of keys named (or ending in) <code>{}</code> are replaced; string values matching \
         <code>{}</code> are replaced, before anything is written.</p></body></html>",
        esc(&policy.keys.join(", ")),
        esc(&policy.patterns.join(", "))
    );
    h
}
