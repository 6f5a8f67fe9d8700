//! Lines for the operator, on stdout and stderr, written so that a closed
//! or broken stream (a dropped ssh session, `| head -c1`) never stops
//! plugctl: a reload must still run its command, release and write its
//! record when nobody can read its output.

use std::io::Write;

fn write_line(mut w: impl Write, line: &str) -> bool {
    w.write_all(line.as_bytes())
        .and_then(|()| w.write_all(b"\n"))
        .and_then(|()| w.flush())
        .is_ok()
}

/// Print `line` on stdout; false if it could not be written.
pub fn out(line: &str) -> bool {
    write_line(std::io::stdout().lock(), line)
}

/// Print `plugctl: warning: WHAT` on stderr.
pub fn warning(what: &str) {
    write_line(
        std::io::stderr().lock(),
        &format!("plugctl: warning: {what}"),
    );
}

/// Print `plugctl: error: WHAT` on stderr, on one line.
pub fn error(what: &str) {
    let one_line = what.replace('\n', " ");
    write_line(
        std::io::stderr().lock(),
        &format!("plugctl: error: {one_line}"),
    );
}

/// Print `line` on stderr as it is.
pub fn err_line(line: &str) {
    write_line(std::io::stderr().lock(), line);
}
