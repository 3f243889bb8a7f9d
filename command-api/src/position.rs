//! Position tokens for read-your-writes (R3): where a command's event landed in the log.
//! Clients treat the token as opaque and hand it back on a query.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}.{}", self.partition, self.offset, self.topic)
    }
}

impl Position {
    /// Parses a token made by `Display`; anything else is `None`.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.splitn(4, '.');
        if parts.next()? != "v1" {
            return None;
        }
        let partition = parts.next()?.parse().ok().filter(|p: &i32| *p >= 0)?;
        let offset = parts.next()?.parse().ok().filter(|o: &i64| *o >= 0)?;
        let topic = parts.next().filter(|t| !t.is_empty() && t.len() <= 249)?;
        Some(Self {
            topic: topic.to_owned(),
            partition,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_rejected() {
        let position = Position {
            topic: "t.cruxlog.climbing_session".into(),
            partition: 3,
            offset: 42,
        };
        assert_eq!(Position::parse(&position.to_string()), Some(position));
        for bad in [
            "",
            "v2.1.2.t",
            "v1.-1.2.t",
            "v1.1.x.t",
            "v1.1.2.",
            "../../etc/passwd",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }
}
