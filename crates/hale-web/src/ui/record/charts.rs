//! Charts of a measurement, or of a watch's data, over a chosen period: SVG, a table of the
//! same numbers, and a sentence comparing it with the period before.
// Handlers return early with the page to show (a redirect, an error page) as `Err`.
#![allow(clippy::result_large_err)]

use super::*;

#[derive(Template)]
#[template(path = "chart.html")]
struct ChartPage {
    chrome: Chrome,
    action: String,
    back: (String, String),
    /// Where to add a reading, and the link's words.
    add: Option<(String, String)>,
    periods: Vec<(u32, String, bool)>,
    summary: String,
    svg: String,
    /// Link (if the row is one entry), date, value.
    rows: Vec<(Option<String>, String, String)>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct PeriodQuery {
    #[serde(default)]
    period: Option<u32>,
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// `GET /record/measurements/{kind}?period=30`: the chart, its table and a summary.
pub(crate) async fn chart(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<KindPath>,
    Query(q): Query<PeriodQuery>,
) -> Page {
    let kind =
        MeasurementKind::from_slug(&p.kind).ok_or_else(|| error_page(&v, StatusCode::NOT_FOUND))?;
    let (who, ctx) = person(&state, &v).await?;
    let days = q.period.filter(|d| [30, 90, 365].contains(d)).unwrap_or(30);
    let now = hale_fhir::date::now_millis();
    let from = now - i64::from(days) * DAY_MS;
    let previous_from = from - i64::from(days) * DAY_MS;
    let all = call(&state, &v, move |app| {
        app.readings(&ctx, kind, previous_from)
    })
    .await?;
    let (before, during): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.at < from);
    let l = v.lang;
    let name = l.t(&format!("kind-{}", kind.slug())).to_lowercase();
    let unit = unit_words(l, kind.parts()[0].unit);
    let values = |rs: &[hale_app::readings::Reading], i: usize| -> Vec<f64> {
        rs.iter()
            .filter_map(|r| r.values.get(i)?.parse::<f64>().ok())
            .collect()
    };
    let series: Vec<Vec<f64>> = (0..kind.parts().len())
        .map(|i| values(&during, i))
        .collect();
    let averages: Vec<String> = series
        .iter()
        .filter_map(|s| mean(s.iter().copied()))
        .map(chart::round)
        .collect();
    let previous: Vec<String> = (0..kind.parts().len())
        .filter_map(|i| mean(values(&before, i).into_iter()))
        .map(chart::round)
        .collect();
    let mut summary = String::new();
    if !during.is_empty() {
        let joined = averages.join("/");
        let count = during.len().to_string();
        summary = if kind == MeasurementKind::BloodPressure {
            l.ta(
                "chart-summary-bp",
                &[
                    ("average", joined.clone()),
                    ("unit", unit.clone()),
                    ("count", count),
                ],
            )
        } else {
            l.ta(
                "chart-summary",
                &[
                    ("kind", name.clone()),
                    ("average", joined.clone()),
                    ("unit", unit.clone()),
                    ("count", count),
                ],
            )
        };
        if previous.len() == averages.len() && !previous.is_empty() {
            let now_first = mean(series[0].iter().copied()).unwrap_or(0.0);
            let before_first = mean(values(&before, 0).into_iter()).unwrap_or(0.0);
            // Compared as shown, so "72.4, down from 72.4" cannot happen.
            let key = if chart::round(now_first) == chart::round(before_first) {
                "chart-compare-same"
            } else if now_first > before_first {
                "chart-compare-up"
            } else {
                "chart-compare-down"
            };
            summary.push(' ');
            summary.push_str(&l.t1(key, "previous", previous.join("/")));
        }
    }
    let lines: Vec<chart::Series> = kind
        .parts()
        .iter()
        .enumerate()
        .map(|(i, part)| chart::Series {
            name: l.t(&format!("part-{}", part.name)),
            points: during
                .iter()
                .filter_map(|r| Some((r.at, r.values.get(i)?.parse::<f64>().ok()?)))
                .collect(),
        })
        .collect();
    let svg = chart::svg(l, &lines, from, now, &l.t1("chart-image", "kind", &name));
    let page = ChartPage {
        chrome: signed_in_chrome(&state, &v, &who, l.t1("chart-title", "kind", &name)),
        action: format!("/record/measurements/{}", kind.slug()),
        back: (
            "/record/measurements".to_owned(),
            l.t("category-measurements"),
        ),
        add: Some((
            format!("/record/measurements/add/{}", kind.slug()),
            l.t("chart-add"),
        )),
        periods: [30, 90, 365]
            .into_iter()
            .map(|d| (d, l.t(&format!("chart-period-{d}")), d == days))
            .collect(),
        summary,
        svg,
        rows: during
            .iter()
            .rev()
            .map(|r| {
                (
                    Some(format!("/record/entry/Observation/{}", r.id)),
                    day(l, r.at),
                    format!("{} {unit}", r.values.join("/")),
                )
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}

#[derive(serde::Deserialize)]
pub(crate) struct MetricPath {
    metric: String,
}

/// `GET /record/wellbeing/{metric}?period=30`: a watch's or phone's readings, as daily
/// (or, over a year, weekly) figures: a chart, a table and a summary.
pub(crate) async fn activity(
    AxumState(state): AxumState<State>,
    v: Visitor,
    Path(p): Path<MetricPath>,
    Query(q): Query<PeriodQuery>,
) -> Page {
    let Some(found) = hale_app::metrics::by_id(&p.metric) else {
        return Err(error_page(&v, StatusCode::NOT_FOUND));
    };
    let metric = found.id;
    let (who, ctx) = person(&state, &v).await?;
    let days = q.period.filter(|d| [30, 90, 365].contains(d)).unwrap_or(30);
    let bucket = if days == 365 { 7 * DAY_MS } else { DAY_MS };
    let now = hale_fhir::date::now_millis();
    // Whole buckets, ending with the one that holds today, from UK midnight (a bucket is 24
    // hours, so across a change of the clocks days before it are an hour off).
    let tomorrow = hale_fhir::uk_time::today().next_day();
    let end = tomorrow
        .and_then(hale_fhir::uk_time::start_of)
        .unwrap_or((now / DAY_MS + 1) * DAY_MS);
    let from = end - i64::from(days) * DAY_MS;
    let buckets = call(&state, &v, move |app| {
        let record = ctx
            .actor
            .record()
            .cloned()
            .ok_or_else(|| AppError::Forbidden("no record".into()))?;
        app.sample_buckets(&ctx, &record, metric, from, end, bucket)
    })
    .await?;
    // Blood sugar is kept in mg/dL (UCUM's canonical unit) and shown in mmol/L, as the NHS
    // writes it.
    let display_scale = if metric == "blood_glucose" {
        1.0 / 18.015_588
    } else {
        1.0
    };
    // Steps and the like add up over a day; rates are averaged. Over a week, totals are a
    // daily average.
    let per_bucket_days = (bucket / DAY_MS) as f64;
    let points: Vec<(i64, f64)> = buckets
        .iter()
        .map(|b| {
            let value = if found.adds_up() {
                b.mean * b.count as f64 / per_bucket_days
            } else {
                b.mean
            };
            (b.start, value * display_scale)
        })
        .collect();
    let l = v.lang;
    let metric_name = l.t(&format!("metric-{metric}"));
    let unit = l.t(&format!("metric-unit-{metric}"));
    let summary = mean(points.iter().map(|p| p.1))
        .map(|avg| {
            l.ta(
                "activity-summary",
                &[("average", chart::round(avg)), ("unit", unit.clone())],
            )
        })
        .unwrap_or_default();
    let lines = [chart::Series {
        name: metric_name.clone(),
        points: points.clone(),
    }];
    let svg = chart::svg(
        l,
        &lines,
        from,
        end,
        &l.t1("activity-image", "metric", metric_name.to_lowercase()),
    );
    let page = ChartPage {
        chrome: signed_in_chrome(
            &state,
            &v,
            &who,
            l.t1("activity-title", "metric", &metric_name),
        ),
        action: format!("/record/wellbeing/{metric}"),
        back: ("/record/wellbeing".to_owned(), l.t("category-wellbeing")),
        add: None,
        periods: [30, 90, 365]
            .into_iter()
            .map(|d| (d, l.t(&format!("chart-period-{d}")), d == days))
            .collect(),
        summary,
        svg,
        rows: points
            .iter()
            .rev()
            .map(|(at, value)| {
                // Named by its first day's midday: a bucket begun an hour either side of
                // midnight (across a change of the clocks) is still that day's.
                let first_day = day(l, *at + DAY_MS / 2);
                let when = if bucket > DAY_MS {
                    l.t1("activity-week-of", "date", first_day)
                } else {
                    first_day
                };
                (None, when, format!("{} {unit}", chart::round(*value)))
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, page.render()))
}
