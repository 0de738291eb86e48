//! Function log lines kept in the database, so `faztctl logs` still has them
//! after a restart or an upgrade: the newest lines of each site, written in
//! batches by the log writer (`functions::logs`).

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::data::{decode, encode};
use super::tables::FUNCTION_LOGS;
use super::{Result, Store};

/// One stored line; its site and sequence number are the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLogLine {
    pub ts_ms: u64,
    pub level: String,
    pub message: String,
}

impl Store {
    /// Appends `(site, seq, line)`s in one transaction, then trims each site
    /// they touch to its newest `keep` lines.
    pub fn append_function_logs(
        &self,
        lines: &[(String, u64, StoredLogLine)],
        keep: u64,
    ) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(FUNCTION_LOGS)?;
            let mut newest: HashMap<&str, u64> = HashMap::new();
            for (site, seq, line) in lines {
                table.insert((site.as_str(), *seq), encode(line)?.as_slice())?;
                let n = newest.entry(site.as_str()).or_default();
                *n = (*n).max(*seq);
            }
            for (site, newest) in newest {
                if newest > keep {
                    table.retain_in((site, 0)..=(site, newest - keep), |_, _| false)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every stored line, by site and then oldest first.
    pub fn function_logs(&self) -> Result<Vec<(String, u64, StoredLogLine)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FUNCTION_LOGS)?;
        let mut lines = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            let (site, seq) = key.value();
            lines.push((site.to_string(), seq, decode(value.value())?));
        }
        Ok(lines)
    }

    /// Deletes a site's stored lines (`site rm` does it with the site too).
    pub fn forget_function_logs(&self, site: &str) -> Result<()> {
        let txn = self.db.begin_write()?;
        txn.open_table(FUNCTION_LOGS)?
            .retain_in((site, 0)..=(site, u64::MAX), |_, _| false)?;
        txn.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(message: &str) -> StoredLogLine {
        StoredLogLine {
            ts_ms: 1,
            level: "info".into(),
            message: message.into(),
        }
    }

    #[test]
    fn keeps_the_newest_lines_per_site() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.redb")).unwrap();
        let batch: Vec<_> = (1..=5)
            .map(|seq| ("a".to_string(), seq, line(&format!("a{seq}"))))
            .chain([("b".to_string(), 1, line("b1"))])
            .collect();
        store.append_function_logs(&batch, 3).unwrap();
        let stored = store.function_logs().unwrap();
        let seqs: Vec<_> = stored.iter().map(|(s, n, _)| (s.as_str(), *n)).collect();
        assert_eq!(seqs, [("a", 3), ("a", 4), ("a", 5), ("b", 1)]);
        store.forget_function_logs("a").unwrap();
        assert_eq!(
            store.function_logs().unwrap(),
            [("b".to_string(), 1, line("b1"))]
        );
    }
}
