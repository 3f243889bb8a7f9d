//! Topic layout as code: one topic per aggregate type, named `<prefix>cruxlog.<aggregate>`,
//! never expiring (`retention.ms=-1`, `cleanup.policy=delete`). The prefix isolates tests and
//! environments sharing a broker. Creation lives in `cruxlog-runtime::kafka`.

use crate::events::aggregate;

/// Every aggregate type that owns a topic; every event belongs to one of them.
pub const AGGREGATE_TYPES: [&str; 10] = [
    aggregate::USER,
    aggregate::DATA_EXPORT,
    aggregate::GYM,
    aggregate::WALL,
    aggregate::ROUTE,
    aggregate::CLIMBING_SESSION,
    aggregate::ANALYSIS,
    aggregate::GHOST,
    aggregate::ROUTINE,
    aggregate::AUDIT,
];

/// Partitions per event topic. Keys hash over them; changing it later would move aggregates
/// between partitions, so it is fixed per topic at creation.
pub const DEFAULT_PARTITIONS: i32 = 6;

/// How a topic must be configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub config: Vec<(&'static str, &'static str)>,
}

/// Topic names for one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn for_aggregate(&self, aggregate_type: &str) -> String {
        format!("{}cruxlog.{aggregate_type}", self.prefix)
    }

    /// Dead letters of one consumer group (R4, A4).
    pub fn dead_letters(&self, consumer: &str) -> String {
        format!("{}cruxlog.dead-letters.{consumer}", self.prefix)
    }

    /// The event topics with their required configuration.
    pub fn event_topic_specs(&self, partitions: i32) -> Vec<TopicSpec> {
        AGGREGATE_TYPES
            .iter()
            .map(|aggregate| TopicSpec {
                name: self.for_aggregate(aggregate),
                partitions,
                config: vec![
                    ("retention.ms", "-1"),
                    ("retention.bytes", "-1"),
                    ("cleanup.policy", "delete"),
                ],
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_prefixed_and_never_expire() {
        let topics = Topics::new("t1.");
        assert_eq!(
            topics.for_aggregate("climbing_session"),
            "t1.cruxlog.climbing_session"
        );
        for spec in topics.event_topic_specs(3) {
            assert!(spec.name.starts_with("t1.cruxlog."));
            assert!(spec.config.contains(&("retention.ms", "-1")));
        }
    }
}
