//! The production run loop: terminal setup and teardown, and the `select!` that joins keys,
//! engine events and the clock. All engine I/O goes through channels, so a slow model or API
//! never blocks a frame.

use std::io::{self, Stdout};
use std::sync::{Arc, Once};
use std::time::Duration;

use chrono::Utc;
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, EventStream,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use medic_agent::protocol::Op;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use crate::app::{Action, App};
use crate::error::{Result, TuiError};
use crate::history::{HistoryProvider, SessionSummary};
use crate::{EngineLink, TuiOptions, ui};

/// How many queued engine events are applied before the next frame is drawn; a burst of
/// answer deltas then costs one frame, not one each.
const EVENT_BATCH: usize = 1024;
/// How long quitting waits for the engine to take the shutdown op.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

fn restore_terminal() -> io::Result<()> {
    disable_raw_mode()?;
    execute!(
        io::stdout(),
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    )
}

/// Restores the terminal before the default panic message prints, so a panic never leaves
/// the user's shell in raw mode on the alternate screen.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = restore_terminal();
            previous(info);
        }));
    });
}

/// Raw mode, alternate screen, mouse capture and bracketed paste for as long as it lives.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl TerminalGuard {
    fn enter() -> Result<Self> {
        install_panic_hook();
        enable_raw_mode().map_err(TuiError::terminal("entering raw mode"))?;
        if let Err(e) = execute!(
            io::stdout(),
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste
        ) {
            let _ = restore_terminal();
            return Err(TuiError::terminal("entering the alternate screen")(e));
        }
        match Terminal::new(CrosstermBackend::new(io::stdout())) {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                let _ = restore_terminal();
                Err(TuiError::terminal("opening the terminal")(e))
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore_terminal();
    }
}

pub(crate) async fn run(link: EngineLink, opts: TuiOptions) -> Result<()> {
    let EngineLink { ops, mut events } = link;
    // Ops go through an unbounded queue and a forwarding task: a full or stalled engine
    // channel must never freeze the screen.
    let (op_tx, mut op_rx) = mpsc::unbounded_channel::<Op>();
    let forwarder = tokio::spawn(async move {
        while let Some(op) = op_rx.recv().await {
            if ops.send(op).await.is_err() {
                break;
            }
        }
    });
    let (hist_tx, mut hist_rx) = mpsc::unbounded_channel::<Vec<SessionSummary>>();
    let mut app = App::new(&opts, Utc::now());
    let mut guard = TerminalGuard::enter()?;
    let mut keys = EventStream::new();
    let mut ticker = tokio::time::interval(opts.tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut events_open = true;
    let mut pending: Vec<Action> = match &opts.initial_question {
        Some(q) => app.ask(q),
        None => Vec::new(),
    };
    let result = loop {
        let mut quit = false;
        for action in pending.drain(..) {
            match action {
                Action::Send(op) => {
                    let _ = op_tx.send(op);
                }
                Action::LoadHistory => load_history(opts.history.clone(), hist_tx.clone()),
                Action::Quit => quit = true,
            }
        }
        if quit {
            break Ok(());
        }
        if let Err(e) = guard.terminal.draw(|f| ui::render(&app, f)) {
            break Err(TuiError::terminal("drawing a frame")(e));
        }
        tokio::select! {
            input = keys.next() => match input {
                Some(Ok(TermEvent::Key(k))) => pending = app.on_key(k),
                Some(Ok(TermEvent::Mouse(m))) => pending = app.on_mouse(m),
                Some(Ok(TermEvent::Paste(text))) => app.on_paste(&text),
                // A resize needs nothing but the next draw, which lays out for the new size.
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(TuiError::terminal("reading input")(e)),
                None => break Ok(()),
            },
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    app.on_event(event);
                    for _ in 0..EVENT_BATCH {
                        match events.try_recv() {
                            Ok(event) => app.on_event(event),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    events_open = false;
                    app.engine_closed();
                }
            },
            Some(sessions) = hist_rx.recv() => app.set_history(sessions),
            _ = ticker.tick() => app.tick(Utc::now()),
        }
    };
    // Tell the engine we are leaving (the quit keys already queued `Shutdown`), then give
    // the forwarder a bounded moment to deliver it.
    drop(op_tx);
    let _ = tokio::time::timeout(SHUTDOWN_WAIT, forwarder).await;
    drop(guard);
    result
}

fn load_history(
    provider: Arc<dyn HistoryProvider>,
    tx: mpsc::UnboundedSender<Vec<SessionSummary>>,
) {
    // The provider reads the data directory; keep that off the UI task.
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(provider.sessions());
    });
}
