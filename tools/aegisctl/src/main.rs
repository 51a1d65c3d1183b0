//! `aegisctl`: see the library's documentation (`aegisctl::run`).

fn main() {
    let code = aegisctl::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
