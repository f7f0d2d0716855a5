//! B3: how long a trend chart's query takes, on a data folder holding years of heart rate.
//! Times the daily summaries of random 30-day and 365-day windows inside the data's span,
//! through the application (as the chart pages and the FHIR daily view ask), and prints p50
//! and p99 for each.
//!
//!     cargo run --release -p hale-server --example trend_query -- DATA_DIR RECORD [ROUNDS]

use std::time::Instant;

use hale_core::{Actor, RecordId, RequestContext, Scopes};

const DAY: i64 = 86_400_000;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(data), Some(record)) = (args.get(1), args.get(2)) else {
        anyhow::bail!("usage: trend_query DATA_DIR RECORD [ROUNDS]");
    };
    let rounds: usize = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(500);
    let config = hale_server::Config::for_data_dir(data.into());
    let app = hale_server::open_app(&config)?;
    let record = RecordId::parse(record).map_err(|_| anyhow::anyhow!("not a record id"))?;
    let ctx = RequestContext::operator(
        Actor::Record {
            record: record.clone(),
            scopes: Scopes::parse("patient/*.rs").map_err(|_| anyhow::anyhow!("scopes"))?,
            subject: "bench".into(),
        },
        "bench",
    );
    // The span of the data: yearly buckets over everything.
    let years = app.sample_buckets(&ctx, &record, "heart_rate", 0, i64::MAX / 4, 365 * DAY)?;
    let (Some(first), Some(last)) = (years.first(), years.last()) else {
        anyhow::bail!("no heart rate in that record");
    };
    let (from, to) = (first.start, last.start + 365 * DAY);
    let samples: i64 = years.iter().map(|b| b.count).sum();
    println!(
        "heart_rate_samples={samples} span_days={} rounds={rounds}",
        (to - from) / DAY
    );
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    for days in [30, 365] {
        let mut took = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let room = ((to - from) / DAY - days).max(1) as u64;
            let start = from + (seed % room) as i64 * DAY;
            let t = Instant::now();
            let buckets =
                app.sample_buckets(&ctx, &record, "heart_rate", start, start + days * DAY, DAY)?;
            took.push(t.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(buckets);
        }
        took.sort_by(f64::total_cmp);
        let at = |q: f64| took[((took.len() as f64 - 1.0) * q).round() as usize];
        println!("metric=trend_{days}d_p50_ms value={:.2}", at(0.5));
        println!("metric=trend_{days}d_p99_ms value={:.2}", at(0.99));
    }
    Ok(())
}
