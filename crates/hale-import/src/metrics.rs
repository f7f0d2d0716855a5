//! The metrics Hale understands: a plain name, a LOINC code, one canonical UCUM unit, and the
//! units each source writes, with the conversion to the canonical one.
//!
//! | metric | LOINC | unit | Apple Health type |
//! |---|---|---|---|
//! | heart rate | 8867-4 | /min | HeartRate |
//! | resting heart rate | 40443-4 | /min | RestingHeartRate |
//! | heart rate variability (SDNN) | 80404-7 | ms | HeartRateVariabilitySDNN |
//! | steps | 55423-8 | {steps} | StepCount |
//! | body weight | 29463-7 | kg | BodyMass |
//! | body height | 8302-6 | cm | Height |
//! | body mass index | 39156-5 | kg/m2 | BodyMassIndex |
//! | systolic blood pressure | 8480-6 | mm[Hg] | BloodPressureSystolic |
//! | diastolic blood pressure | 8462-4 | mm[Hg] | BloodPressureDiastolic |
//! | oxygen saturation | 59408-5 | % | OxygenSaturation |
//! | respiratory rate | 9279-1 | /min | RespiratoryRate |
//! | body temperature | 8310-5 | Cel | BodyTemperature |
//! | blood glucose | 2339-0 | mg/dL | BloodGlucose |
//! | active energy burned | 41981-2 | kcal | ActiveEnergyBurned |
//! | walking and running distance | 41953-1 | m | DistanceWalkingRunning |
//! | body fat | 41982-0 | % | BodyFatPercentage |
//! | sleep | 93832-4 | min | (none: sleep is a category in Apple Health) |
//!
//! Apple types are `HKQuantityTypeIdentifier` + the name above. Units are matched without
//! regard to case, as exports vary (`count/min`, `Count/Min`). A unit of `1` is a fraction
//! (0.97 is 97 %); Apple writes such fractions with the unit `%`, and its reader says so.

/// A metric, its code and its canonical unit.
#[derive(Debug, PartialEq)]
pub struct Metric {
    /// A stable id (`heart_rate`), used in storage.
    pub id: &'static str,
    /// What a person would call it.
    pub name: &'static str,
    /// The LOINC code of the observation.
    pub loinc: &'static str,
    /// The canonical UCUM unit.
    pub unit: &'static str,
    /// Accepted source units (lower case) and the linear conversion `value * factor + offset`.
    units: &'static [(&'static str, f64, f64)],
    /// The Apple Health type identifiers that carry it.
    apple: &'static [&'static str],
}

impl Metric {
    /// Whether a day's figure is the sum of its samples (steps, sleep) rather than their
    /// mean (heart rate, weight).
    pub fn adds_up(&self) -> bool {
        matches!(
            self.id,
            "steps" | "active_energy" | "walking_running_distance" | "sleep"
        )
    }

    /// The FHIR Observation category it belongs to.
    pub fn category(&self) -> &'static str {
        match self.id {
            "blood_glucose" => "laboratory",
            _ if self.adds_up() => "activity",
            _ => "vital-signs",
        }
    }

    /// Converts a value written in `unit` to the canonical unit, if the unit is known.
    pub fn convert(&self, value: f64, unit: &str) -> Option<f64> {
        let unit = unit.trim().to_ascii_lowercase();
        self.units
            .iter()
            .find(|(u, _, _)| *u == unit)
            .map(|(_, factor, offset)| value * factor + offset)
    }
}

const PER_MIN: &[(&str, f64, f64)] = &[
    ("count/min", 1.0, 0.0),
    ("/min", 1.0, 0.0),
    ("bpm", 1.0, 0.0),
    ("beats/min", 1.0, 0.0),
    ("breaths/min", 1.0, 0.0),
];

const PERCENT: &[(&str, f64, f64)] = &[("%", 1.0, 0.0), ("1", 100.0, 0.0)];

/// Every metric Hale understands.
pub static METRICS: &[Metric] = &[
    Metric {
        id: "heart_rate",
        name: "heart rate",
        loinc: "8867-4",
        unit: "/min",
        units: PER_MIN,
        apple: &["HKQuantityTypeIdentifierHeartRate"],
    },
    Metric {
        id: "resting_heart_rate",
        name: "resting heart rate",
        loinc: "40443-4",
        unit: "/min",
        units: PER_MIN,
        apple: &["HKQuantityTypeIdentifierRestingHeartRate"],
    },
    Metric {
        id: "heart_rate_variability",
        name: "heart rate variability",
        loinc: "80404-7",
        unit: "ms",
        units: &[("ms", 1.0, 0.0), ("s", 1000.0, 0.0)],
        apple: &["HKQuantityTypeIdentifierHeartRateVariabilitySDNN"],
    },
    Metric {
        id: "steps",
        name: "steps",
        loinc: "55423-8",
        unit: "{steps}",
        units: &[
            ("count", 1.0, 0.0),
            ("{steps}", 1.0, 0.0),
            ("steps", 1.0, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierStepCount"],
    },
    Metric {
        id: "body_weight",
        name: "weight",
        loinc: "29463-7",
        unit: "kg",
        units: &[
            ("kg", 1.0, 0.0),
            ("g", 0.001, 0.0),
            ("lb", 0.453_592_37, 0.0),
            ("st", 6.350_293_18, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierBodyMass"],
    },
    Metric {
        id: "body_height",
        name: "height",
        loinc: "8302-6",
        unit: "cm",
        units: &[
            ("cm", 1.0, 0.0),
            ("m", 100.0, 0.0),
            ("in", 2.54, 0.0),
            ("ft", 30.48, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierHeight"],
    },
    Metric {
        id: "bmi",
        name: "body mass index",
        loinc: "39156-5",
        unit: "kg/m2",
        units: &[("count", 1.0, 0.0), ("kg/m2", 1.0, 0.0)],
        apple: &["HKQuantityTypeIdentifierBodyMassIndex"],
    },
    Metric {
        id: "systolic_bp",
        name: "systolic blood pressure",
        loinc: "8480-6",
        unit: "mm[Hg]",
        units: &[("mmhg", 1.0, 0.0), ("mm[hg]", 1.0, 0.0)],
        apple: &["HKQuantityTypeIdentifierBloodPressureSystolic"],
    },
    Metric {
        id: "diastolic_bp",
        name: "diastolic blood pressure",
        loinc: "8462-4",
        unit: "mm[Hg]",
        units: &[("mmhg", 1.0, 0.0), ("mm[hg]", 1.0, 0.0)],
        apple: &["HKQuantityTypeIdentifierBloodPressureDiastolic"],
    },
    Metric {
        id: "oxygen_saturation",
        name: "oxygen saturation",
        loinc: "59408-5",
        unit: "%",
        units: PERCENT,
        apple: &["HKQuantityTypeIdentifierOxygenSaturation"],
    },
    Metric {
        id: "respiratory_rate",
        name: "breathing rate",
        loinc: "9279-1",
        unit: "/min",
        units: PER_MIN,
        apple: &["HKQuantityTypeIdentifierRespiratoryRate"],
    },
    Metric {
        id: "body_temperature",
        name: "body temperature",
        loinc: "8310-5",
        unit: "Cel",
        units: &[
            ("degc", 1.0, 0.0),
            ("cel", 1.0, 0.0),
            ("c", 1.0, 0.0),
            ("degf", 5.0 / 9.0, -160.0 / 9.0),
            ("f", 5.0 / 9.0, -160.0 / 9.0),
        ],
        apple: &["HKQuantityTypeIdentifierBodyTemperature"],
    },
    // 1 mmol/L of glucose is 18.0156 mg/dL; Apple writes mmol/L as "mmol<180.15588000005408>/L".
    Metric {
        id: "blood_glucose",
        name: "blood glucose",
        loinc: "2339-0",
        unit: "mg/dL",
        units: &[
            ("mg/dl", 1.0, 0.0),
            ("mmol<180.15588000005408>/l", 18.015_588, 0.0),
            ("mmol/l", 18.015_588, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierBloodGlucose"],
    },
    Metric {
        id: "active_energy",
        name: "active energy burned",
        loinc: "41981-2",
        unit: "kcal",
        units: &[
            ("kcal", 1.0, 0.0),
            ("cal", 1.0, 0.0),
            ("kj", 0.239_005_736, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierActiveEnergyBurned"],
    },
    Metric {
        id: "walking_running_distance",
        name: "walking and running distance",
        loinc: "41953-1",
        unit: "m",
        units: &[
            ("m", 1.0, 0.0),
            ("km", 1000.0, 0.0),
            ("mi", 1609.344, 0.0),
            ("ft", 0.3048, 0.0),
        ],
        apple: &["HKQuantityTypeIdentifierDistanceWalkingRunning"],
    },
    Metric {
        id: "body_fat",
        name: "body fat",
        loinc: "41982-0",
        unit: "%",
        units: PERCENT,
        apple: &["HKQuantityTypeIdentifierBodyFatPercentage"],
    },
    Metric {
        id: "sleep",
        name: "sleep",
        loinc: "93832-4",
        unit: "min",
        units: &[
            ("min", 1.0, 0.0),
            ("h", 60.0, 0.0),
            ("s", 1.0 / 60.0, 0.0),
            ("ms", 1.0 / 60_000.0, 0.0),
        ],
        apple: &[],
    },
];

/// The metric an Apple Health record type carries.
pub fn by_apple_type(record_type: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.apple.contains(&record_type))
}

/// The metric with a LOINC code.
pub fn by_loinc(code: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.loinc == code)
}

/// A metric by its stable id.
pub fn by_id(id: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_convert_to_the_canonical_unit() {
        let weight = by_id("body_weight").unwrap();
        assert!((weight.convert(154.0, "lb").unwrap() - 69.853).abs() < 0.001);
        let temp = by_id("body_temperature").unwrap();
        assert!((temp.convert(98.6, "degF").unwrap() - 37.0).abs() < 0.001);
        let spo2 = by_id("oxygen_saturation").unwrap();
        assert!((spo2.convert(0.97, "1").unwrap() - 97.0).abs() < 1e-9);
        assert_eq!(spo2.convert(97.0, "%"), Some(97.0));
        assert_eq!(
            by_id("heart_rate").unwrap().convert(61.0, "Count/Min"),
            Some(61.0)
        );
        assert_eq!(by_id("heart_rate").unwrap().convert(61.0, "furlongs"), None);
    }

    #[test]
    fn every_metric_has_a_loinc_code_and_a_unit_it_accepts() {
        for m in METRICS {
            assert!(m.loinc.contains('-'), "{}", m.id);
            assert!(
                m.convert(1.0, m.unit).is_some(),
                "{} must accept its own unit",
                m.id
            );
        }
    }
}
