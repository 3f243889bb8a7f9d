//! Climbing grades: French sport (4a…9c+), V-scale (VB…V17) and Fontainebleau (3…9A),
//! each mapped onto one numeric difficulty scale so grades of different systems compare.
//! Unknown grades are validation errors, never a silent default.

use serde::{Deserialize, Serialize};

/// Which grading system a grade is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GradeSystem {
    French,
    VScale,
    Fontainebleau,
}

/// A grade as the climber wrote it, in its system; `label` is the canonical spelling
/// (`7a+`, `V5`, `6C+`). Matches the `Grade` record of the schemas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grade {
    pub system: GradeSystem,
    pub label: String,
}

/// Why a grade was refused; the API names the field and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GradeError {
    #[error("{label:?} is not a French sport grade (4a to 9c+)")]
    French { label: String },
    #[error("{label:?} is not a V-scale grade (VB, V0 to V17)")]
    VScale { label: String },
    #[error("{label:?} is not a Fontainebleau grade (3 to 9A)")]
    Fontainebleau { label: String },
}

/// Points on the common scale: `number * 100`, `+33` per letter after `a`/`A`, `+17` for a
/// `+`. French 6a = 600, 7b+ = 750; Font 6A = 600, 5+ = 550; V-scale through the usual
/// V-to-Font table. It orders and compares grades across systems; it does not claim a route
/// and a boulder of equal points feel the same.
pub type Difficulty = i32;

/// The V-scale mapped onto Font, VB..V17 (index 0 = VB, 1 = V0, ...).
const V_TO_FONT: [&str; 19] = [
    "3", "4", "5", "5+", "6A+", "6B+", "6C+", "7A", "7A+", "7B+", "7C", "7C+", "8A", "8A+", "8B",
    "8B+", "8C", "8C+", "9A",
];

impl Grade {
    /// Parses and canonicalises a grade; case and surrounding spaces are forgiven.
    pub fn parse(system: GradeSystem, label: &str) -> Result<Self, GradeError> {
        let trimmed = label.trim();
        let canonical = match system {
            GradeSystem::French => french(trimmed),
            GradeSystem::VScale => vscale(trimmed),
            GradeSystem::Fontainebleau => font(trimmed),
        };
        canonical
            .map(|label| Self { system, label })
            .ok_or_else(|| {
                let label = label.to_owned();
                match system {
                    GradeSystem::French => GradeError::French { label },
                    GradeSystem::VScale => GradeError::VScale { label },
                    GradeSystem::Fontainebleau => GradeError::Fontainebleau { label },
                }
            })
    }

    /// The grade on the common scale. A `Grade` read from an old event is re-validated, so
    /// an invalid label is an error here too.
    pub fn difficulty(&self) -> Result<Difficulty, GradeError> {
        let grade = Self::parse(self.system, &self.label)?;
        Ok(match grade.system {
            GradeSystem::French | GradeSystem::Fontainebleau => points(&grade.label),
            GradeSystem::VScale => {
                let index = match &grade.label[1..] {
                    "B" => 0,
                    number => number.parse::<usize>().map_or(0, |n| n + 1),
                };
                points(V_TO_FONT[index])
            }
        })
    }
}

/// `6a+` / `6A+` / `5+` / `4` -> points on the common scale (input already canonical).
fn points(label: &str) -> Difficulty {
    let bytes = label.as_bytes();
    let number = Difficulty::from(bytes[0] - b'0') * 100;
    let letter = match bytes.get(1).map(u8::to_ascii_lowercase) {
        Some(b'b') => 33,
        Some(b'c') => 67,
        _ => 0,
    };
    let plus = if label.ends_with('+') { 17 } else { 0 };
    // Font's `4+`/`5+` sit halfway between whole numbers.
    let plus = if bytes.len() == 2 && plus > 0 {
        50
    } else {
        plus
    };
    number + letter + plus
}

fn french(label: &str) -> Option<String> {
    let lower = label.to_ascii_lowercase();
    let (core, plus) = lower
        .strip_suffix('+')
        .map_or((lower.as_str(), ""), |core| (core, "+"));
    let mut chars = core.chars();
    let (Some(number @ '4'..='9'), Some(letter @ 'a'..='c'), None) =
        (chars.next(), chars.next(), chars.next())
    else {
        return None;
    };
    Some(format!("{number}{letter}{plus}"))
}

fn font(label: &str) -> Option<String> {
    let upper = label.to_ascii_uppercase();
    let valid = match upper.as_str() {
        "3" | "4" | "4+" | "5" | "5+" | "9A" => true,
        other => {
            let (core, _) = other
                .strip_suffix('+')
                .map_or((other, false), |core| (core, true));
            let mut chars = core.chars();
            matches!(
                (chars.next(), chars.next(), chars.next()),
                (Some('6'..='8'), Some('A'..='C'), None)
            )
        }
    };
    valid.then_some(upper)
}

fn vscale(label: &str) -> Option<String> {
    let upper = label.to_ascii_uppercase();
    let rest = upper.strip_prefix('V')?;
    if rest == "B" {
        return Some(upper);
    }
    let valid = !rest.is_empty()
        && rest.len() <= 2
        && rest.bytes().all(|b| b.is_ascii_digit())
        && !(rest.len() == 2 && rest.starts_with('0'))
        && rest.parse::<u8>().is_ok_and(|n| n <= 17);
    valid.then_some(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn difficulty(system: GradeSystem, label: &str) -> Difficulty {
        Grade::parse(system, label)
            .and_then(|g| g.difficulty())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_french_grade_parses_in_order() {
        let mut last = 0;
        let mut count = 0;
        for number in 4..=9 {
            for letter in ['a', 'b', 'c'] {
                for plus in ["", "+"] {
                    let label = format!("{number}{letter}{plus}");
                    let points = difficulty(GradeSystem::French, &label);
                    assert!(points > last, "{label}");
                    last = points;
                    count += 1;
                }
            }
        }
        assert_eq!(count, 36);
        assert_eq!(difficulty(GradeSystem::French, "6a"), 600);
        assert_eq!(difficulty(GradeSystem::French, " 7B+ "), 750);
        assert_eq!(
            Grade::parse(GradeSystem::French, "7B+").map(|g| g.label),
            Ok("7b+".into())
        );
    }

    #[test]
    fn v_scale_and_font_are_ordered_and_comparable() {
        let mut last = 0;
        for n in [
            "B", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14",
            "15", "16", "17",
        ] {
            let points = difficulty(GradeSystem::VScale, &format!("v{n}"));
            assert!(points > last, "V{n}");
            last = points;
        }
        let font = [
            "3", "4", "4+", "5", "5+", "6A", "6A+", "6B", "6B+", "6C", "6C+", "7A", "7A+", "7B",
            "7B+", "7C", "7C+", "8A", "8A+", "8B", "8B+", "8C", "8C+", "9A",
        ];
        let mut last = 0;
        for label in font {
            let points = difficulty(GradeSystem::Fontainebleau, label);
            assert!(points > last, "{label}");
            last = points;
        }
        assert_eq!(
            difficulty(GradeSystem::VScale, "V5"),
            difficulty(GradeSystem::Fontainebleau, "6C+")
        );
        assert_eq!(
            difficulty(GradeSystem::VScale, "V17"),
            difficulty(GradeSystem::Fontainebleau, "9a")
        );
        assert_eq!(
            difficulty(GradeSystem::Fontainebleau, "7a"),
            difficulty(GradeSystem::French, "7a")
        );
    }

    #[test]
    fn unknown_grades_are_errors_never_defaults() {
        for label in ["", "3c", "10a", "9d", "6", "6a++", "a6", "7a-", "١٢"] {
            assert!(
                Grade::parse(GradeSystem::French, label).is_err(),
                "French {label:?}"
            );
        }
        for label in ["", "V18", "V-1", "V", "V05", "VBB", "5", "V1.5"] {
            assert!(
                Grade::parse(GradeSystem::VScale, label).is_err(),
                "V {label:?}"
            );
        }
        for label in ["", "2", "3+", "6", "6D", "9A+", "9B", "10A", "V3"] {
            assert!(
                Grade::parse(GradeSystem::Fontainebleau, label).is_err(),
                "Font {label:?}"
            );
        }
        let stale = Grade {
            system: GradeSystem::VScale,
            label: "V99".into(),
        };
        assert!(stale.difficulty().is_err());
    }
}
