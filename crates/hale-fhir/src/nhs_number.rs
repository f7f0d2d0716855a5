//! The NHS number and its Modulus 11 check digit (NHS Data Dictionary, "NHS Number").

/// The identifier system for NHS numbers in UK Core.
pub const SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// Whether `s` is a valid NHS number: ten digits (spaces allowed between groups as people
/// write them, `943 476 5919`) whose tenth is the Modulus 11 check digit of the first nine.
pub fn is_valid(s: &str) -> bool {
    let digits: Vec<u32> = s
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_digit(10))
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    if digits.len() != 10 {
        return false;
    }
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = match 11 - (sum % 11) {
        11 => 0,
        10 => return false, // no valid check digit: never issued
        c => c,
    };
    check == digits[9]
}

#[cfg(test)]
mod tests {
    use super::is_valid;

    #[test]
    fn published_test_numbers_pass_the_check() {
        // NHS England publishes 943 476 5919 and 999 000 0018-style test numbers.
        assert!(is_valid("9434765919"));
        assert!(is_valid("943 476 5919"));
        assert!(is_valid("9990000018"));
    }

    #[test]
    fn a_wrong_check_digit_or_length_fails() {
        assert!(!is_valid("9434765918"));
        assert!(!is_valid("943476591"));
        assert!(!is_valid("94347659190"));
        assert!(!is_valid("94347659x9"));
        assert!(!is_valid(""));
    }
}
