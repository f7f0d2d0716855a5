//! Line charts as SVG, drawn on the server: no script, no inline style (presentation
//! attributes only, which the Content-Security-Policy allows), a text alternative, and the
//! lowest and highest values and the first and last dates labelled. Every chart has a table
//! of the same numbers beside it on its page.

use super::Lang;
use super::record::day;

/// One line: its name (for the key, when there is more than one) and its points.
pub(crate) struct Series {
    pub name: String,
    /// (ms since the epoch, value), oldest first.
    pub points: Vec<(i64, f64)>,
}

/// NHS blue and purple: distinguishable, and each above 4.5:1 against the page.
const COLOURS: [&str; 2] = ["#005eb8", "#330072"];

/// Rounds for people: whole numbers for big values, one decimal place for small ones.
pub(crate) fn round(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of `series` from `from` to `to` (ms), described by `label`.
pub(crate) fn svg(lang: Lang, series: &[Series], from: i64, to: i64, label: &str) -> String {
    const W: f64 = 640.0;
    const LEFT: f64 = 48.0;
    const RIGHT: f64 = 12.0;
    const BOTTOM: f64 = 36.0;
    const PLOT: f64 = 212.0;
    // Room above the plot for a key when there is more than one line.
    let top = if series.len() > 1 {
        12.0 + 18.0 * series.len() as f64
    } else {
        12.0
    };
    let h = top + PLOT + BOTTOM;
    let all: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let (mut lo, mut hi) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    if all.is_empty() {
        (lo, hi) = (0.0, 1.0);
    }
    let (min, max) = (lo, hi);
    let pad = ((hi - lo) * 0.1).max(1.0);
    (lo, hi) = (lo - pad, hi + pad);
    let span = (to - from).max(1) as f64;
    let x = |at: i64| LEFT + (at - from) as f64 / span * (W - LEFT - RIGHT);
    let y = |v: f64| top + (hi - v) / (hi - lo) * PLOT;
    let mut out = format!(
        "<svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {W} {h}\" width=\"100%\" preserveAspectRatio=\"xMidYMid meet\" xmlns=\"http://www.w3.org/2000/svg\">",
        escape(label)
    );
    let base = top + PLOT;
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{r}\" y2=\"{base}\" stroke=\"#4c6272\" stroke-width=\"1\"/><line x1=\"{LEFT}\" y1=\"{top}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#4c6272\" stroke-width=\"1\"/>",
        r = W - RIGHT
    ));
    if !all.is_empty() {
        for v in [min, max] {
            out.push_str(&format!(
                "<text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"12\" text-anchor=\"end\" fill=\"#212b32\">{}</text>",
                round(v),
                tx = LEFT - 6.0,
                ty = y(v) + 4.0
            ));
        }
    }
    for (at, anchor) in [(from, "start"), (to, "end")] {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"{anchor}\" fill=\"#212b32\">{}</text>",
            x(at),
            h - 12.0,
            escape(&day(lang, at))
        ));
    }
    for (line, colour) in series.iter().zip(COLOURS) {
        let path: Vec<String> = line
            .points
            .iter()
            .map(|(at, v)| format!("{:.1},{:.1}", x(*at), y(*v)))
            .collect();
        out.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
            path.join(" ")
        ));
        // Dots only where they can be told apart (a year of daily data is a line).
        if line.points.len() <= 120 {
            for (at, v) in &line.points {
                out.push_str(&format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\"/>",
                    x(*at),
                    y(*v)
                ));
            }
        }
    }
    if series.len() > 1 {
        for (i, (line, colour)) in series.iter().zip(COLOURS).enumerate() {
            let ky = 14.0 + 18.0 * i as f64;
            out.push_str(&format!(
                "<rect x=\"{x0}\" y=\"{r:.1}\" width=\"14\" height=\"4\" fill=\"{colour}\"/><text x=\"{x1}\" y=\"{t:.1}\" font-size=\"12\" fill=\"#212b32\">{}</text>",
                escape(&line.name),
                x0 = LEFT,
                r = ky - 4.0,
                x1 = LEFT + 20.0,
                t = ky + 1.0
            ));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_each_series_labels_its_range_and_escapes_its_text() {
        let lines = [
            Series {
                name: "Top <number>".into(),
                points: vec![(0, 120.0), (86_400_000, 130.0)],
            },
            Series {
                name: "Bottom".into(),
                points: vec![(0, 80.0), (86_400_000, 85.0)],
            },
        ];
        let svg = svg(Lang::EnGb, &lines, 0, 86_400_000, "Chart \"x\"");
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"Chart &quot;x&quot;\""));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">130</text>") && svg.contains(">80</text>"));
        assert!(svg.contains("Top &lt;number&gt;"));
        assert!(svg.contains("1 January 1970") && svg.contains("2 January 1970"));
        assert!(!svg.contains("style="));
    }

    #[test]
    fn averages_read_as_people_write_them() {
        assert_eq!(round(72.44), "72.4");
        assert_eq!(round(72.0), "72");
        assert_eq!(round(121.6), "122");
    }
}
