//! The unit files, from the templates in `units/` (embedded at build time),
//! with the binary path and the options of `faztd install` filled in.

use std::net::SocketAddr;
use std::path::Path;

use super::Scope;

const USER_TEMPLATE: &str = include_str!("../../../units/faztd.user.service");
const SYSTEM_TEMPLATE: &str = include_str!("../../../units/faztd.system.service");

/// What goes into a unit besides the template.
#[derive(Debug, Clone)]
pub struct UnitOptions<'a> {
    pub scope: Scope,
    /// The faztd binary systemd runs.
    pub binary: &'a Path,
    /// The user instance's data directory (the system one is fixed: /var/lib/fazt).
    pub data_dir: &'a Path,
    pub domain: Option<&'a str>,
    pub listen: Option<SocketAddr>,
}

/// Renders the unit file for `options`.
pub fn render(options: &UnitOptions<'_>) -> String {
    let mut exec = vec![quote(&options.binary.to_string_lossy())];
    if let Some(domain) = options.domain {
        exec.push("--domain".into());
        exec.push(quote(domain));
    }
    if let Some(listen) = options.listen {
        exec.push("--listen".into());
        exec.push(quote(&listen.to_string()));
    }
    let template = match options.scope {
        Scope::User => USER_TEMPLATE,
        Scope::System => SYSTEM_TEMPLATE,
    };
    template
        .replace("@EXEC_START@", &exec.join(" "))
        .replace("@DATA_DIR@", &quote(&options.data_dir.to_string_lossy()))
}

/// Quotes one word for a unit file: `%` specifiers are escaped, and words
/// with spaces, quotes or backslashes are double-quoted (systemd.syntax(7)).
pub fn quote(word: &str) -> String {
    let escaped = word.replace('%', "%%");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:=,@[]%".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn opts(scope: Scope) -> (PathBuf, PathBuf) {
        let _ = scope;
        (
            PathBuf::from("/home/ann/.local/bin/faztd"),
            PathBuf::from("/home/ann/.local/share/fazt"),
        )
    }

    #[test]
    fn user_unit_has_the_binary_options_and_notify_type() {
        let (bin, data) = opts(Scope::User);
        let unit = render(&UnitOptions {
            scope: Scope::User,
            binary: &bin,
            data_dir: &data,
            domain: Some("192.168.1.5"),
            listen: Some("127.0.0.1:9000".parse().unwrap()),
        });
        assert!(unit.contains(
            "ExecStart=/home/ann/.local/bin/faztd --domain 192.168.1.5 --listen 127.0.0.1:9000\n"
        ));
        assert!(unit.contains("Type=notify\n"));
        assert!(unit.contains("WatchdogSec="));
        assert!(unit.contains("Restart=on-failure\n"));
        assert!(unit.contains("Environment=FAZT_DATA_DIR=/home/ann/.local/share/fazt\n"));
        assert!(unit.contains("Environment=FAZT_SOCKET=%t/fazt/faztd.sock\n"));
        assert!(unit.contains("WantedBy=default.target\n"));
        assert!(!unit.contains("@EXEC_START@") && !unit.contains("@DATA_DIR@"));
    }

    #[test]
    fn system_unit_is_hardened() {
        let bin = PathBuf::from("/usr/local/bin/faztd");
        let unit = render(&UnitOptions {
            scope: Scope::System,
            binary: &bin,
            data_dir: Path::new("/unused"),
            domain: Some("example.org"),
            listen: None,
        });
        for line in [
            "ExecStart=/usr/local/bin/faztd --domain example.org\n",
            "Type=notify\n",
            "User=fazt\n",
            "DynamicUser=yes\n",
            "ProtectSystem=strict\n",
            "NoNewPrivileges=yes\n",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE\n",
            "StateDirectory=fazt\n",
            "RuntimeDirectory=fazt\n",
            "Environment=FAZT_DATA_DIR=/var/lib/fazt\n",
            "Environment=FAZT_SOCKET=/run/fazt/faztd.sock\n",
            "WantedBy=multi-user.target\n",
        ] {
            assert!(unit.contains(line), "missing {line:?} in\n{unit}");
        }
    }

    #[test]
    fn odd_paths_are_quoted_and_specifiers_escaped() {
        assert_eq!(quote("/opt/fazt/bin/faztd"), "/opt/fazt/bin/faztd");
        assert_eq!(quote("/home/a b/faztd"), "\"/home/a b/faztd\"");
        assert_eq!(quote("/x/100%/faztd"), "/x/100%%/faztd");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(""), "\"\"");
    }
}
