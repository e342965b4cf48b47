//! Interrupts leave nothing behind: SIGINT, SIGTERM and SIGHUP remove every temp file in flight
//! (`shrink_io::atomic`'s registry, charts included) and end the process with 128 + the signal
//! number (130, 143, 129), the code a shell reports for a process ended by that signal.
//! SIGKILL cannot be caught: the next write to the same path sweeps what it left.

/// Installs the handler (on its own thread, so it may lock the registry and remove files) and
/// hooks chart rendering into the temp-file registry. Call first thing in `main`.
pub fn install() {
    shrink_report::plot::set_temp_file_hooks(shrink_report::plot::TempFileHooks {
        sweep_stale: |p| {
            shrink_io::atomic::sweep_stale(p);
        },
        register: shrink_io::atomic::register,
        deregister: shrink_io::atomic::deregister,
    });
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        let _ = std::thread::Builder::new().name("signals".into()).spawn(move || {
            if let Some(signal) = signals.forever().next() {
                shrink_io::atomic::remove_in_flight();
                std::process::exit(128 + signal);
            }
        });
    }
}
