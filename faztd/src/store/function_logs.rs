//! Function log lines kept in the database, so `faztctl logs` still has them
//! after a restart or an upgrade: the newest lines of each site, written in
//! batches by the log writer (`functions::logs`).

use std::collections::HashMap;

use redb::{ReadableDatabase, ReadableTable};

use super::data::{decode, encode};
use super::tables::FUNCTION_LOGS;
use super::{LogLine, Result, Store};

impl Store {
    /// Appends `(site, line)`s in one transaction, then trims each site they
    /// touch to its newest `keep` lines.
    pub fn append_function_logs(&self, lines: &[(String, LogLine)], keep: u64) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(FUNCTION_LOGS)?;
            let mut newest: HashMap<&str, u64> = HashMap::new();
            for (site, line) in lines {
                table.insert((site.as_str(), line.seq), encode(line)?.as_slice())?;
                let n = newest.entry(site.as_str()).or_default();
                *n = (*n).max(line.seq);
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
    pub fn function_logs(&self) -> Result<Vec<(String, LogLine)>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(FUNCTION_LOGS)?;
        let mut lines = Vec::new();
        for entry in table.iter()? {
            let (key, value) = entry?;
            lines.push((key.value().0.to_string(), decode(value.value())?));
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

    fn line(seq: u64, message: &str) -> LogLine {
        LogLine {
            seq,
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
            .map(|seq| ("a".to_string(), line(seq, &format!("a{seq}"))))
            .chain([("b".to_string(), line(1, "b1"))])
            .collect();
        store.append_function_logs(&batch, 3).unwrap();
        let stored = store.function_logs().unwrap();
        let seqs: Vec<_> = stored.iter().map(|(s, l)| (s.as_str(), l.seq)).collect();
        assert_eq!(seqs, [("a", 3), ("a", 4), ("a", 5), ("b", 1)]);
        store.forget_function_logs("a").unwrap();
        assert_eq!(
            store.function_logs().unwrap(),
            [("b".to_string(), line(1, "b1"))]
        );
    }
}
