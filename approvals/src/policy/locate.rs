//! Maps key paths (`roles[1].max_risk`) to the line they start on, so validation
//! problems found after deserialization can still name a line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
pub(crate) struct Lines {
    lines: HashMap<String, usize>,
    stack: Vec<Frame>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Lines {
    /// Indexes `src`; a document that does not parse yields an empty index.
    pub(crate) fn index(src: &str) -> Lines {
        let mut lines = Lines::default();
        let mut parser = Parser::new_from_str(src);
        // Syntax errors are reported by serde_yaml with their own location.
        let _ = parser.load(&mut lines, false);
        lines
    }

    /// The line of `path`, or of its nearest ancestor that has one.
    pub(crate) fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path.to_owned();
        loop {
            if let Some(l) = self.lines.get(&p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }

    /// The path a value event at the current position gets; `None` when it is a map key.
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }
}

impl MarkedEventReceiver for Lines {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(value, ..) => match self.value_path() {
                Some(p) => {
                    self.lines.entry(p).or_insert(line);
                }
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        self.lines.entry(join(path, &value)).or_insert(line);
                        *key = Some(value);
                    }
                }
            },
            Event::MappingStart(..) => {
                let p = self.value_path().unwrap_or_default();
                self.lines.entry(p.clone()).or_insert(line);
                self.stack.push(Frame::Map { path: p, key: None });
            }
            Event::SequenceStart(..) => {
                let p = self.value_path().unwrap_or_default();
                self.lines.entry(p.clone()).or_insert(line);
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.value_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_keys() {
        let src = "expiry: 10m\nroles:\n  - name: sre\n    members: [alice, bob]\n    max_risk: high\n  - { name: x, max_risk: low }\n";
        let l = Lines::index(src);
        assert_eq!(l.line_of("expiry"), Some(1));
        assert_eq!(l.line_of("roles"), Some(2));
        assert_eq!(l.line_of("roles[0].name"), Some(3));
        assert_eq!(l.line_of("roles[0].members[1]"), Some(4));
        assert_eq!(l.line_of("roles[0].max_risk"), Some(5));
        assert_eq!(l.line_of("roles[1].max_risk"), Some(6));
        assert_eq!(l.line_of("roles[1].nothing.here"), Some(6));
    }
}
