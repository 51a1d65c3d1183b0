//! The brain's ports: what the control thread may ask the brain (pause, resume, close,
//! flatten, list positions) and its answers, over a small command ring and a reply ring;
//! and the closed bars it hands to the writer thread. The brain polls the commands between
//! batches and never blocks on any of these rings.

use super::bar::Bar;
use aegis_analytics::FeatureSnapshot;
use aegis_trading::Position;
use aegis_wire::SymbolId;
use std::time::{Duration, Instant};

/// How long the control thread waits for the brain to answer.
pub const BRAIN_PATIENCE: Duration = Duration::from_secs(5);

/// What the control thread asks the brain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrainCommand {
    /// Stop opening positions.
    Pause,
    /// Open positions again.
    Resume,
    /// Close this symbol's position at its next trade.
    Close(u16),
    /// Close everything now.
    Flatten,
    /// List positions.
    Positions,
}

/// What the brain answers.
#[derive(Clone, Copy, Debug)]
// Replies live in ring slots and are never moved about; boxing a position would allocate
// on the brain's thread.
#[allow(clippy::large_enum_variant)]
pub enum BrainReply {
    /// The command's outcome (false: nothing to do, such as no position to close).
    Done(bool),
    /// One position (of a `Positions` answer).
    Position(Position),
    /// The end of a `Positions` answer.
    End,
}

/// The control thread's end of the brain link.
pub struct BrainLink {
    commands: rtrb::Producer<BrainCommand>,
    replies: rtrb::Consumer<BrainReply>,
}

/// The brain's end: polled in its loop.
pub struct BrainControl {
    commands: rtrb::Consumer<BrainCommand>,
    replies: rtrb::Producer<BrainReply>,
}

/// A command ring and a reply ring between the control thread and the brain.
pub fn brain_link() -> (BrainLink, BrainControl) {
    let (commands_tx, commands_rx) = rtrb::RingBuffer::new(16);
    let (replies_tx, replies_rx) = rtrb::RingBuffer::new(256);
    (
        BrainLink { commands: commands_tx, replies: replies_rx },
        BrainControl { commands: commands_rx, replies: replies_tx },
    )
}

impl BrainControl {
    /// The next command, if any.
    pub fn take_command(&mut self) -> Option<BrainCommand> {
        self.commands.pop().ok()
    }

    /// Sends a reply (dropped if the control thread stopped reading: it times out).
    pub fn reply(&mut self, reply: BrainReply) {
        let _ = self.replies.push(reply);
    }
}

/// Why the brain did not answer a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// The command ring is full: earlier commands are still unread.
    #[error("the brain's command ring is full")]
    Full,
    /// No answer within [`BRAIN_PATIENCE`].
    #[error("the brain did not answer within {} s", BRAIN_PATIENCE.as_secs())]
    Silent,
}

impl BrainLink {
    /// Sends `command` and collects the brain's answer (`Done`, or positions up to `End`).
    pub fn ask(&mut self, command: BrainCommand) -> Result<Vec<BrainReply>, LinkError> {
        while self.replies.pop().is_ok() {} // a late answer to an earlier, timed-out request
        self.commands.push(command).map_err(|_| LinkError::Full)?;
        let deadline = Instant::now() + BRAIN_PATIENCE;
        let mut answer = Vec::new();
        while Instant::now() < deadline {
            match self.replies.pop() {
                Ok(reply @ BrainReply::Position(_)) => answer.push(reply),
                Ok(reply) => {
                    answer.push(reply);
                    return Ok(answer);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Err(LinkError::Silent)
    }
}

/// A closed 1m bar leaving the brain (for `--bars-out` and `--features-out`).
#[derive(Clone, Copy, Debug)]
pub struct ClosedBar {
    /// Symbol.
    pub symbol: SymbolId,
    /// The bar.
    pub bar: Bar,
    /// Its features; `None` when the analytics refused the bar.
    pub features: Option<FeatureSnapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brain_link_carries_commands_and_answers() {
        let (mut link, mut brain) = brain_link();
        let worker = std::thread::spawn(move || {
            // The brain's side: answer one Positions request with two positions.
            loop {
                match brain.take_command() {
                    Some(BrainCommand::Positions) => break,
                    Some(other) => panic!("{other:?}"),
                    None => std::thread::yield_now(),
                }
            }
            for _ in 0..2 {
                brain.reply(BrainReply::Done(true));
            }
        });
        let answer = link.ask(BrainCommand::Positions).unwrap();
        worker.join().unwrap();
        // `Done` ends an answer: the second one is left for the next request to discard.
        assert_eq!(answer.len(), 1);
        assert!(matches!(answer[0], BrainReply::Done(true)));
    }
}
