//! Kubernetes' `resource.Quantity`, exactly: parsing, and the ceiling roundings the kubelet
//! prints (`MilliValue()` and `Value()`), for host and providers alike.

#[cfg(test)]
mod tests;

/// Why a quantity could not be read.
#[derive(Debug, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {0:?} is not a number with an optional suffix")]
    Malformed(String),
    #[error("quantity {0:?} has more digits than can be represented")]
    TooPrecise(String),
}

/// An exactly parsed quantity: `mantissa × 2^binary_exponent × 10^decimal_exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount {
    mantissa: i128,
    binary_exponent: u32,
    decimal_exponent: i32,
}

impl Amount {
    pub const ZERO: Amount = Amount::integer(0);
    pub const ONE: Amount = Amount::integer(1);

    const fn integer(value: i128) -> Self {
        Amount {
            mantissa: value,
            binary_exponent: 0,
            decimal_exponent: 0,
        }
    }

    pub fn parse(quantity: &str) -> Result<Self, QuantityError> {
        let malformed = || QuantityError::Malformed(quantity.to_string());
        let (negative, unsigned) = match quantity.as_bytes().first() {
            Some(b'-') => (true, &quantity[1..]),
            Some(b'+') => (false, &quantity[1..]),
            _ => (false, quantity),
        };
        let number_end = unsigned
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(unsigned.len());
        let (number, suffix) = unsigned.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return Err(malformed());
        }
        let (binary_exponent, suffix_exponent) = suffix_exponents(suffix).ok_or_else(malformed)?;
        let mut mantissa: i128 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(digit - b'0')))
                .ok_or_else(|| QuantityError::TooPrecise(quantity.to_string()))?;
        }
        let fraction_digits = i32::try_from(fraction.len()).map_err(|_| malformed())?;
        let decimal_exponent = suffix_exponent
            .checked_sub(fraction_digits)
            .ok_or_else(malformed)?;
        Ok(Amount {
            mantissa: if negative { -mantissa } else { mantissa },
            binary_exponent,
            decimal_exponent,
        })
    }

    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// The value in thousandths, rounded up (Go's `MilliValue()`).
    pub fn ceil_milli(self) -> i64 {
        self.ceil_scaled(3)
    }

    /// The value rounded up to an integer (Go's `Value()`).
    pub fn ceil_units(self) -> i64 {
        self.ceil_scaled(0)
    }

    /// `ceil(value × 10^scale)`, saturating at the `i64` range like Kubernetes' quantities.
    fn ceil_scaled(self, scale: i32) -> i64 {
        let saturated = if self.mantissa < 0 {
            i64::MIN
        } else {
            i64::MAX
        };
        let Some(numerator) = 2_i128
            .checked_pow(self.binary_exponent)
            .and_then(|power| self.mantissa.checked_mul(power))
        else {
            return saturated;
        };
        let exponent = self.decimal_exponent.saturating_add(scale);
        let scaled = match u32::try_from(exponent) {
            Ok(up) => 10_i128
                .checked_pow(up)
                .and_then(|power| numerator.checked_mul(power)),
            Err(_) => match 10_i128.checked_pow(exponent.unsigned_abs()) {
                Some(power) => Some(ceil_div(numerator, power)),
                // Smaller than any representable step: only its sign matters to the ceiling.
                None => Some(i128::from(numerator > 0)),
            },
        };
        scaled.map_or(saturated, |value| i64::try_from(value).unwrap_or(saturated))
    }
}

/// `(binary exponent, decimal exponent)` of a quantity suffix.
fn suffix_exponents(suffix: &str) -> Option<(u32, i32)> {
    let exponents = match suffix {
        "" => (0, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        _ => {
            let exponent = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))?;
            // Go's ParseInt: an optional sign, then digits only.
            let digits = exponent.trim_start_matches(['+', '-']);
            if digits.is_empty()
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || exponent.len() - digits.len() > 1
            {
                return None;
            }
            (0, exponent.parse().ok()?)
        }
    };
    Some(exponents)
}

/// `ceil(numerator / denominator)` for a positive denominator.
pub fn ceil_div(numerator: i128, denominator: i128) -> i128 {
    -((-numerator).div_euclid(denominator))
}
