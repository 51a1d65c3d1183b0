//! Links the sidecar to libtorch so it runs without LD_LIBRARY_PATH: an rpath to the
//! wheel's `torch/lib` (RUNPATH, so LD_LIBRARY_PATH can still point at another torch 2.11
//! install), and `libtorch_cuda` kept as a needed library — `--as-needed` would drop it,
//! since nothing references it by symbol, and CUDA would then silently report unavailable.

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(libtorch) = std::env::var("LIBTORCH") else { return };
    let lib = std::path::Path::new(&libtorch).join("lib");
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
