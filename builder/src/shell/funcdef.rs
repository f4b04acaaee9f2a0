//! Structural proof that `declare -f` text defines exactly the functions a state lists and
//! runs nothing when bash reads it.
//!
//! Pure, and never runs bash: a conservative lexer for bash's *canonical* function output
//! (what `declare -f` prints) follows quotes (`'…'`, `"…"`, `$'…'`, `$"…"`), expansions
//! (`$(…)`, `${…}`, `$((…))`, `<(…)`, backquotes), arithmetic commands, `[[ … ]]` (regexes included),
//! `case` patterns, here-documents, array assignments and extglob groups, and shows that the
//! `{` after `NAME () ` closes exactly at the end of that function's text. Anything it does
//! not fully understand is refused: comments, line continuations, `$[…]`,
//! `coproc`, a `{`/`}` word anywhere but where a command starts,
//! single quotes or `$'` inside a double-quoted `${…}` (where bash's rules depend on the
//! operator), NUL bytes. Bash's canonical output uses none of these in
//! ways the lexer refuses (tested against every function of nixpkgs' `setup.sh`, its default
//! hooks and tests/stdenv).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FunctionError {
    #[error("function `{name}` is not a plain definition: {what} (byte {offset} of its text)")]
    Refused {
        name: String,
        what: &'static str,
        offset: usize,
    },
    #[error("after {after}, the function text does not continue with the definition of `{name}` (byte {offset})")]
    MissingDefinition {
        /// "the definition of `f`", or "the start".
        after: String,
        name: String,
        offset: usize,
    },
    #[error("{bytes} bytes of function text follow {after}")]
    Trailing { after: String, bytes: usize },
    #[error("the function text holds a NUL byte (offset {offset})")]
    Nul { offset: usize },
}

/// Checks that `text` is exactly the definitions of `names`, in that order, each
/// `NAME () \n{ \n … \n}\n` with nothing that runs when bash reads it.
pub fn check_definitions<'n>(
    text: &[u8],
    names: impl IntoIterator<Item = &'n str>,
) -> Result<(), FunctionError> {
    if let Some(offset) = text.iter().position(|&b| b == 0) {
        return Err(FunctionError::Nul { offset });
    }
    let mut pos = 0;
    let mut after = "the start".to_owned();
    for name in names {
        pos = definition_end(name, text, pos).map_err(|e| match e {
            FunctionError::MissingDefinition { name, offset, .. } => {
                FunctionError::MissingDefinition {
                    after: after.clone(),
                    name,
                    offset,
                }
            }
            other => other,
        })?;
        after = format!("the definition of `{name}`");
    }
    if pos != text.len() {
        return Err(FunctionError::Trailing {
            after,
            bytes: text.len() - pos,
        });
    }
    Ok(())
}

/// The end of the definition of `name` that starts at `start` in `text` (just after its
/// closing `}\n`).
pub fn definition_end(name: &str, text: &[u8], start: usize) -> Result<usize, FunctionError> {
    let header = format!("{name} () \n{{");
    if !text[start..].starts_with(header.as_bytes()) {
        return Err(FunctionError::MissingDefinition {
            after: "the start".to_owned(),
            name: name.to_owned(),
            offset: start,
        });
    }
    let mut lexer = Lexer {
        s: text,
        pos: start + header.len(),
        heredocs: Vec::new(),
        depth: 0,
    };
    let refused = |lexer: &Lexer, what| FunctionError::Refused {
        name: name.to_owned(),
        what,
        offset: lexer.pos - start,
    };
    match lexer.list(End::Brace) {
        Ok(Hit::Brace) => {}
        Ok(_) => return Err(refused(&lexer, "the body does not end with `}`")),
        Err(what) => return Err(refused(&lexer, what)),
    }
    if lexer.peek() != Some(b'\n') {
        return Err(refused(&lexer, "text follows the closing `}` on its line"));
    }
    Ok(lexer.pos + 1)
}

type R<T> = Result<T, &'static str>;

/// What ends a command list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// A `}` word where a command starts.
    Brace,
    /// `)`: a subshell, `$(…)`, `<(…)`.
    Paren,
    /// `;;`, `;&`, `;;&` or `esac`: one `case` item.
    CaseItem,
}

#[derive(Debug, PartialEq, Eq)]
enum Hit {
    Brace,
    Paren,
    CaseSeparator,
    Esac,
}

/// Where the lexer is relative to commands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// A command may start here and a `}`/`esac` may end the list (after a newline, `;`,
    /// `&`, or at the start of a list).
    Start,
    /// A command must follow (after `|`, `&&`, `||`, `if`, `then`, `!` …): `{` opens a group,
    /// `}` is refused.
    Continue,
    /// Inside a command: words are arguments.
    Argument,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    /// Here-documents whose bodies start after the next newline: (delimiter, strip tabs,
    /// nesting depth of the list that named them).
    heredocs: Vec<(Vec<u8>, bool, usize)>,
    /// How many lists enclose the cursor.
    depth: usize,
}

/// A word: its bytes, and whether it is bare (no quoting, escapes or expansions), which is
/// what makes it a reserved word.
struct Word {
    start: usize,
    end: usize,
    bare: bool,
}

fn is_meta(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')' | b'<' | b'>'
    )
}

/// `NAME=`, `NAME+=`, `NAME[…]=`, `NAME[…]+=`: what may precede an array's `(`.
fn is_assignment_prefix(w: &[u8]) -> bool {
    let Some(w) = w.strip_suffix(b"=") else {
        return false;
    };
    let w = w.strip_suffix(b"+").unwrap_or(w);
    let (name, subscript) = match w.iter().position(|&b| b == b'[') {
        Some(i) => (&w[..i], Some(&w[i..])),
        None => (w, None),
    };
    let ident = matches!(name.first(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && name.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    ident
        && subscript.is_none_or(|s| {
            s.ends_with(b"]") && !s[1..s.len() - 1].iter().any(|&b| b == b']' || b == b'\n')
        })
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn at(&self, k: usize) -> Option<u8> {
        self.s.get(self.pos + k).copied()
    }

    fn rest(&self) -> &[u8] {
        &self.s[self.pos..]
    }

    fn text(&self, w: &Word) -> &[u8] {
        &self.s[w.start..w.end]
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// A command list up to its terminator (consumed).
    fn list(&mut self, end: End) -> R<Hit> {
        self.depth += 1;
        let hit = self.list_body(end);
        self.depth -= 1;
        hit
    }

    fn list_body(&mut self, end: End) -> R<Hit> {
        let mut at = Position::Start;
        let mut seen_command = false;
        // The previous token was a word where a command starts (a possible `NAME ()`).
        let mut command_word = false;
        // The previous token was `for`/`select` (a following `((` is arithmetic).
        let mut after_for = false;
        loop {
            let c = self.peek().ok_or("unexpected end of text")?;
            let was_command_word = std::mem::take(&mut command_word);
            let was_after_for = std::mem::take(&mut after_for);
            match c {
                b' ' | b'\t' => {
                    self.pos += 1;
                    command_word = was_command_word;
                    after_for = was_after_for;
                }
                b'\n' => {
                    self.pos += 1;
                    self.read_heredocs()?;
                    if at != Position::Continue {
                        at = Position::Start;
                    }
                }
                b';' => {
                    if self.rest().starts_with(b";;&") {
                        self.pos += 3;
                        return self.case_separator(end);
                    }
                    if self.rest().starts_with(b";;") || self.rest().starts_with(b";&") {
                        self.pos += 2;
                        return self.case_separator(end);
                    }
                    self.pos += 1;
                    at = Position::Start;
                }
                b'&' => {
                    if self.rest().starts_with(b"&&") {
                        self.pos += 2;
                        at = Position::Continue;
                    } else if self.at(1) == Some(b'>') {
                        self.pos += if self.at(2) == Some(b'>') { 3 } else { 2 };
                        self.redirect_target()?;
                        seen_command = true;
                        at = Position::Argument;
                    } else {
                        self.pos += 1;
                        at = Position::Start;
                    }
                }
                b'|' => {
                    self.pos += if matches!(self.at(1), Some(b'|' | b'&')) {
                        2
                    } else {
                        1
                    };
                    at = Position::Continue;
                }
                b'<' | b'>' => {
                    if self.at(1) == Some(b'(') {
                        self.pos += 2;
                        self.substitution()?;
                        self.word_tail()?;
                    } else {
                        self.redirection()?;
                    }
                    seen_command = true;
                    at = Position::Argument;
                }
                b'(' => {
                    if at != Position::Argument || was_after_for {
                        if self.at(1) == Some(b'(') {
                            self.pos += 2;
                            self.arithmetic()?;
                        } else if was_after_for {
                            return Err("`for` followed by `(`");
                        } else {
                            self.pos += 1;
                            self.subshell()?;
                        }
                        seen_command = true;
                        at = Position::Argument;
                    } else if was_command_word {
                        // `NAME ()`: a nested function definition; its body follows.
                        self.pos += 1;
                        self.skip_blanks();
                        if self.peek() != Some(b')') {
                            return Err("`(` after a command name is not `()`");
                        }
                        self.pos += 1;
                        at = Position::Continue;
                    } else {
                        return Err("`(` where no command starts");
                    }
                }
                b')' => {
                    return if end == End::Paren {
                        self.pos += 1;
                        self.finish(seen_command, Hit::Paren)
                    } else {
                        Err("unbalanced `)`")
                    };
                }
                _ => {
                    let w = self.word()?;
                    let bare = if w.bare { Some(self.text(&w)) } else { None };
                    if at == Position::Argument {
                        if matches!(bare, Some(b"{" | b"}")) {
                            return Err("a `{` or `}` word inside a command");
                        }
                        continue;
                    }
                    match bare {
                        Some(b"}") => {
                            return if end == End::Brace && at == Position::Start {
                                self.finish(seen_command, Hit::Brace)
                            } else {
                                Err("`}` where it does not close a group")
                            };
                        }
                        Some(b"esac") => {
                            return if end == End::CaseItem && at == Position::Start {
                                self.finish(true, Hit::Esac)
                            } else {
                                Err("`esac` outside `case`")
                            };
                        }
                        Some(b"{") => {
                            if self.list(End::Brace)? != Hit::Brace {
                                return Err("group not closed by `}`");
                            }
                            at = Position::Argument;
                        }
                        Some(
                            b"if" | b"then" | b"else" | b"elif" | b"while" | b"until" | b"do"
                            | b"!" | b"time",
                        ) => at = Position::Continue,
                        Some(b"fi" | b"done") => at = Position::Argument,
                        Some(b"case") => {
                            self.case()?;
                            at = Position::Argument;
                        }
                        Some(b"for" | b"select") => {
                            after_for = true;
                            at = Position::Argument;
                        }
                        Some(b"[[") => {
                            self.double_bracket()?;
                            at = Position::Argument;
                        }
                        Some(b"function") => {
                            // `function NAME ()`: how bash prints a nested definition.
                            self.skip_blanks();
                            let name = self.word()?;
                            if !name.bare {
                                return Err("`function` not followed by a plain name");
                            }
                            command_word = true;
                            at = Position::Argument;
                        }
                        Some(b"]]" | b"in" | b"coproc") => {
                            return Err("a reserved word bash's output does not put there");
                        }
                        _ => {
                            command_word = true;
                            at = Position::Argument;
                        }
                    }
                    seen_command = true;
                }
            }
        }
    }

    fn case_separator(&mut self, end: End) -> R<Hit> {
        if end == End::CaseItem {
            self.finish(true, Hit::CaseSeparator)
        } else {
            Err("`;;` outside `case`")
        }
    }

    /// A list ends: it must have held a command and leave no here-document unread.
    fn finish(&self, seen_command: bool, hit: Hit) -> R<Hit> {
        if !seen_command {
            return Err("an empty command list");
        }
        if self.heredocs.iter().any(|h| h.2 == self.depth) {
            return Err("a here-document whose body does not follow in the same list");
        }
        Ok(hit)
    }

    fn subshell(&mut self) -> R<()> {
        match self.list(End::Paren)? {
            Hit::Paren => Ok(()),
            _ => Err("subshell not closed by `)`"),
        }
    }

    /// `$(…)`, `<(…)`, `>(…)` after the `(`.
    fn substitution(&mut self) -> R<()> {
        self.subshell()
    }

    /// The rest of a word that began with an expansion handled by the caller.
    fn word_tail(&mut self) -> R<()> {
        if self.peek().is_some_and(|b| !is_meta(b)) {
            self.word()?;
        }
        Ok(())
    }

    /// One word, up to an unquoted metacharacter.
    fn word(&mut self) -> R<Word> {
        let start = self.pos;
        let mut bare = true;
        if self.peek() == Some(b'#') {
            return Err("a comment (`#` where a word starts)");
        }
        while let Some(b) = self.peek() {
            match b {
                b'(' if self.pos > start && is_assignment_prefix(&self.s[start..self.pos]) => {
                    self.pos += 1;
                    self.array()?;
                    bare = false;
                }
                b'(' if self.pos > start
                    && matches!(self.s[self.pos - 1], b'@' | b'!' | b'*' | b'+' | b'?') =>
                {
                    self.pos += 1;
                    self.pattern_group()?;
                    bare = false;
                }
                _ if is_meta(b) => break,
                b'\\' => {
                    self.escape()?;
                    bare = false;
                }
                b'\'' => {
                    self.single_quoted()?;
                    bare = false;
                }
                b'"' => {
                    self.pos += 1;
                    self.double_quoted()?;
                    bare = false;
                }
                b'`' => {
                    self.backquoted()?;
                    bare = false;
                }
                b'$' => {
                    self.dollar(false)?;
                    bare = false;
                }
                _ => self.pos += 1,
            }
        }
        if self.pos == start {
            return Err("an empty word");
        }
        Ok(Word {
            start,
            end: self.pos,
            bare,
        })
    }

    /// `\X` outside quotes; a line continuation is refused (bash would join the lines before
    /// it recognises words).
    fn escape(&mut self) -> R<()> {
        match self.at(1) {
            None => Err("a backslash at the end"),
            Some(b'\n') => Err("a line continuation"),
            Some(_) => {
                self.pos += 2;
                Ok(())
            }
        }
    }

    /// `` `…` ``: bash reads it up to the next backquote not escaped by `\`, quotes inside
    /// included (its text is parsed only when it runs).
    fn backquoted(&mut self) -> R<()> {
        let mut i = self.pos + 1;
        loop {
            match self.s.get(i).ok_or("an unterminated backquote")? {
                b'`' => {
                    self.pos = i + 1;
                    return Ok(());
                }
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    }

    fn single_quoted(&mut self) -> R<()> {
        let close = self.s[self.pos + 1..]
            .iter()
            .position(|&b| b == b'\'')
            .ok_or("an unterminated single quote")?;
        self.pos += close + 2;
        Ok(())
    }

    /// After the opening `"`.
    fn double_quoted(&mut self) -> R<()> {
        loop {
            match self.peek().ok_or("an unterminated double quote")? {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => {
                    if self.at(1).is_none() {
                        return Err("an unterminated double quote");
                    }
                    self.pos += 2;
                }
                b'`' => self.backquoted()?,
                b'$' => self.dollar(true)?,
                _ => self.pos += 1,
            }
        }
    }

    /// `$…` at the cursor; `quoted` inside double quotes.
    fn dollar(&mut self, quoted: bool) -> R<()> {
        match self.at(1) {
            Some(b'\'') if !quoted => {
                self.pos += 2;
                loop {
                    match self.peek().ok_or("an unterminated $'…'")? {
                        b'\'' => {
                            self.pos += 1;
                            return Ok(());
                        }
                        b'\\' => {
                            if self.at(1).is_none() {
                                return Err("an unterminated $'…'");
                            }
                            self.pos += 2;
                        }
                        _ => self.pos += 1,
                    }
                }
            }
            Some(b'"') if !quoted => {
                self.pos += 2;
                self.double_quoted()
            }
            Some(b'(') if self.at(2) == Some(b'(') => {
                self.pos += 3;
                self.arithmetic()
            }
            Some(b'(') => {
                self.pos += 2;
                self.substitution()
            }
            Some(b'{') => {
                self.pos += 2;
                self.parameter(quoted)
            }
            Some(b'[') => Err("`$[…]` arithmetic"),
            _ => {
                self.pos += 1;
                Ok(())
            }
        }
    }

    /// After `${`, up to its `}`.
    fn parameter(&mut self, quoted: bool) -> R<()> {
        loop {
            match self.peek().ok_or("an unterminated ${…}")? {
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'{' => return Err("a `{` inside ${…}"),
                b'\\' => {
                    if self.at(1).is_none() {
                        return Err("an unterminated ${…}");
                    }
                    self.pos += 2;
                }
                b'\'' if quoted => return Err("a single quote inside a double-quoted ${…}"),
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.pos += 1;
                    self.double_quoted()?;
                }
                b'`' => self.backquoted()?,
                b'$' => self.dollar(quoted)?,
                _ => self.pos += 1,
            }
        }
    }

    /// After `((` or `$((`, up to the matching `))`.
    fn arithmetic(&mut self) -> R<()> {
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or("unterminated arithmetic")? {
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' if depth == 0 => {
                    return if self.at(1) == Some(b')') {
                        self.pos += 2;
                        Ok(())
                    } else {
                        Err("`((` that is not arithmetic")
                    };
                }
                b')' => {
                    depth -= 1;
                    self.pos += 1;
                }
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.pos += 1;
                    self.double_quoted()?;
                }
                b'`' => self.backquoted()?,
                b'\\' => self.escape()?,
                b'$' => self.dollar(false)?,
                _ => self.pos += 1,
            }
        }
    }

    /// After `NAME=(`, up to the `)`.
    fn array(&mut self) -> R<()> {
        loop {
            match self.peek().ok_or("an unterminated array assignment")? {
                b' ' | b'\t' | b'\n' => self.pos += 1,
                b')' => {
                    self.pos += 1;
                    return Ok(());
                }
                b if is_meta(b) => return Err("an operator inside an array assignment"),
                _ => {
                    let w = self.word()?;
                    if w.bare && matches!(self.text(&w), b"{" | b"}") {
                        return Err("a `{` or `}` word inside an array assignment");
                    }
                }
            }
        }
    }

    /// After an extglob `@(`, `!(`, `*(`, `+(`, `?(`, up to the matching `)`.
    fn pattern_group(&mut self) -> R<()> {
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or("an unterminated extglob pattern")? {
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' if depth == 0 => {
                    self.pos += 1;
                    return Ok(());
                }
                b')' => {
                    depth -= 1;
                    self.pos += 1;
                }
                b'\n' => return Err("a newline inside an extglob pattern"),
                b'\\' => self.escape()?,
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.pos += 1;
                    self.double_quoted()?;
                }
                b'`' => self.backquoted()?,
                b'$' => self.dollar(false)?,
                _ => self.pos += 1,
            }
        }
    }

    /// A redirection operator at the cursor (`<`/`>` family) and its target.
    fn redirection(&mut self) -> R<()> {
        let r = self.rest();
        if r.starts_with(b"<<<") {
            self.pos += 3;
            return self.redirect_target();
        }
        if r.starts_with(b"<<") {
            let strip = r.get(2) == Some(&b'-');
            self.pos += if strip { 3 } else { 2 };
            return self.heredoc_delimiter(strip);
        }
        let len = [&b"<>"[..], b"<&", b">>", b">&", b">|"]
            .iter()
            .find(|op| r.starts_with(op))
            .map_or(1, |op| op.len());
        self.pos += len;
        self.redirect_target()
    }

    fn redirect_target(&mut self) -> R<()> {
        self.skip_blanks();
        if matches!(self.peek(), Some(b'<' | b'>')) && self.at(1) == Some(b'(') {
            self.pos += 2;
            self.substitution()?;
            return self.word_tail();
        }
        let w = self.word()?;
        if w.bare && matches!(self.text(&w), b"{" | b"}") {
            return Err("a `{` or `}` word as a redirection target");
        }
        Ok(())
    }

    /// `<<WORD`, `<<'WORD'`, `<<"WORD"`, `<<\WORD` with WORD in `[A-Za-z0-9_]`; any other
    /// delimiter is refused.
    fn heredoc_delimiter(&mut self, strip_tabs: bool) -> R<()> {
        self.skip_blanks();
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.pos += 1;
                Some(q)
            }
            Some(b'\\') => {
                self.pos += 1;
                None
            }
            _ => None,
        };
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.pos += 1;
        }
        if self.pos == start {
            return Err("a here-document delimiter bash's output does not use");
        }
        let delimiter = self.s[start..self.pos].to_vec();
        if let Some(q) = quote {
            if self.peek() != Some(q) {
                return Err("a here-document delimiter bash's output does not use");
            }
            self.pos += 1;
        }
        if self.peek().is_some_and(|b| !is_meta(b)) {
            return Err("a here-document delimiter bash's output does not use");
        }
        self.heredocs.push((delimiter, strip_tabs, self.depth));
        Ok(())
    }

    /// The bodies of the pending here-documents, right after a newline.
    fn read_heredocs(&mut self) -> R<()> {
        if self.heredocs.iter().any(|h| h.2 != self.depth) {
            return Err("a here-document body inside another list than its redirection");
        }
        for (delimiter, strip_tabs, _) in std::mem::take(&mut self.heredocs) {
            loop {
                let rest = self.rest();
                let len = rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .ok_or("an unterminated here-document")?;
                let mut line = &rest[..len];
                if strip_tabs {
                    while let Some(l) = line.strip_prefix(b"\t") {
                        line = l;
                    }
                }
                let done = line == delimiter.as_slice();
                self.pos += len + 1;
                if done {
                    break;
                }
            }
        }
        Ok(())
    }

    /// After `case`: `WORD in`, then items up to `esac`.
    fn case(&mut self) -> R<()> {
        self.skip_blanks();
        self.word()?;
        self.skip_blanks();
        let w = self.word()?;
        if !(w.bare && self.text(&w) == b"in") {
            return Err("`case` without `in`");
        }
        loop {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n')) {
                self.pos += 1;
            }
            if self.rest().starts_with(b"esac") && self.at(4).is_none_or(is_meta) {
                self.pos += 4;
                return Ok(());
            }
            if self.peek() == Some(b'(') {
                self.pos += 1;
            }
            loop {
                self.skip_blanks();
                let w = self.word()?;
                if w.bare && matches!(self.text(&w), b"{" | b"}") {
                    return Err("a `{` or `}` case pattern");
                }
                self.skip_blanks();
                match self.peek() {
                    Some(b'|') => self.pos += 1,
                    Some(b')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err("a case pattern not followed by `|` or `)`"),
                }
            }
            match self.list(End::CaseItem)? {
                Hit::CaseSeparator => {}
                Hit::Esac => return Ok(()),
                _ => return Err("a case item not ended by `;;` or `esac`"),
            }
        }
    }

    /// After `[[`, up to `]]`.
    fn double_bracket(&mut self) -> R<()> {
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or("an unterminated [[ … ]]")? {
                b' ' | b'\t' | b'\n' => self.pos += 1,
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' => {
                    depth = depth.checked_sub(1).ok_or("unbalanced `)` in [[ … ]]")?;
                    self.pos += 1;
                }
                b'&' if self.at(1) == Some(b'&') => self.pos += 2,
                b'|' if self.at(1) == Some(b'|') => self.pos += 2,
                b'<' | b'>' => self.pos += 1,
                b';' | b'&' | b'|' => return Err("an operator inside [[ … ]]"),
                _ => {
                    let w = self.word()?;
                    if !w.bare {
                        continue;
                    }
                    match self.text(&w) {
                        b"]]" if depth == 0 => return Ok(()),
                        b"{" | b"}" | b"]]" => return Err("a `{`, `}` or `]]` inside [[ … ]]"),
                        b"=~" => {
                            self.skip_blanks();
                            self.regex()?;
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The word after `=~`: parentheses and `|` belong to it.
    fn regex(&mut self) -> R<()> {
        let start = self.pos;
        let mut depth = 0usize;
        loop {
            match self.peek().ok_or("an unterminated [[ … ]]")? {
                b'(' => {
                    depth += 1;
                    self.pos += 1;
                }
                b')' if depth == 0 => break,
                b')' => {
                    depth -= 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\n' if depth == 0 => break,
                b' ' | b'\t' | b'\n' => return Err("a blank inside a regex group"),
                b'|' => self.pos += 1,
                b';' | b'&' | b'<' | b'>' => return Err("an operator inside a regex"),
                b'\\' => self.escape()?,
                b'\'' => self.single_quoted()?,
                b'"' => {
                    self.pos += 1;
                    self.double_quoted()?;
                }
                b'`' => self.backquoted()?,
                b'$' => self.dollar(false)?,
                _ => self.pos += 1,
            }
        }
        if self.pos == start || depth != 0 {
            return Err("an empty or unbalanced regex");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// `declare -F` names and `declare -f` text after bash ran `script`.
    fn dump(script: &str) -> (Vec<String>, Vec<u8>) {
        const MARK: &str = "\n#CPB-TEST-NAMES-END\n";
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c"])
            .arg(format!(
                "{script}\nbuiltin declare -F; builtin printf '{}'; builtin declare -f",
                MARK.replace('\n', "\\n")
            ))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/homeless-shelter")
            .env("NIX_BUILD_TOP", "/tmp")
            .env("out", "/tmp/out")
            .env("outputs", "out")
            .env("shell", "/bin/bash")
            .env("initialPath", "")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("bash runs");
        let at = out
            .stdout
            .windows(MARK.len())
            .position(|w| w == MARK.as_bytes())
            .expect("marker printed");
        let names = String::from_utf8_lossy(&out.stdout[..at])
            .lines()
            .filter_map(|l| l.rsplit_once(' ').map(|(_, n)| n.to_owned()))
            .collect();
        (names, out.stdout[at + MARK.len()..].to_vec())
    }

    fn check_dump(label: &str, script: &str) -> usize {
        let (names, text) = dump(script);
        if let Err(e) = check_definitions(&text, names.iter().map(String::as_str)) {
            let offset = match &e {
                FunctionError::Refused { name, offset, .. } => {
                    let start = text
                        .windows(name.len() + 4)
                        .position(|w| w == format!("{name} () ").as_bytes())
                        .unwrap_or(0);
                    start + offset
                }
                _ => 0,
            };
            let from = offset.saturating_sub(300);
            panic!(
                "{label}: {e}\n--- around the refusal ---\n{}<<HERE>>{}",
                String::from_utf8_lossy(&text[from..offset]),
                String::from_utf8_lossy(&text[offset..(offset + 200).min(text.len())])
            );
        }
        names.len()
    }

    fn sourced(file: &Path) -> String {
        format!(
            "builtin source {} >/dev/null 2>&1 </dev/null || builtin true",
            crate::shell::quote::quote(file.as_os_str().as_encoded_bytes())
        )
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// nixpkgs' stdenv files (test data outside the repository): `NIXPKGS_STDENV_FILES`, else
    /// the shared copy beside the checkout.
    fn nixpkgs_stdenv() -> PathBuf {
        let dir = std::env::var_os("NIXPKGS_STDENV_FILES")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo().join("../shared/nixpkgs-stdenv"));
        assert!(
            dir.join("pkgs/stdenv/generic/setup.sh").is_file(),
            "nixpkgs' stdenv files are needed: set NIXPKGS_STDENV_FILES (not found in {})",
            dir.display()
        );
        dir
    }

    /// Zero false refusals: every function bash prints for nixpkgs' real `setup.sh`, its 14
    /// default hooks, and our tests/stdenv (setup and hooks) is accepted, one file at a time
    /// and all together.
    #[test]
    fn every_stdenv_function_is_accepted() {
        let nixpkgs = nixpkgs_stdenv();
        let mut files = vec![nixpkgs.join("pkgs/stdenv/generic/setup.sh")];
        let mut hooks: Vec<PathBuf> =
            std::fs::read_dir(nixpkgs.join("pkgs/build-support/setup-hooks"))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
        hooks.sort();
        assert_eq!(hooks.len(), 14, "{hooks:?}");
        files.extend(hooks);
        files.push(repo().join("tests/stdenv/setup.sh"));
        let mut ours: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/stdenv/hooks"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        ours.sort();
        files.extend(ours);
        let mut total = 0;
        for f in &files {
            total += check_dump(&f.display().to_string(), &sourced(f));
        }
        let all: Vec<String> = files.iter().map(|f| sourced(f)).collect();
        let together = check_dump("all files", &all.join("\n"));
        assert!(total >= 140 && together >= 60, "{total} {together}");
    }

    /// Constructs beyond the stdenv's, as bash prints them, are accepted.
    #[test]
    fn canonical_constructs_are_accepted() {
        let script = r#"
shopt -s extglob
f1() { cat <<-'EOF'
	x $y }
	EOF
cat <<E2 | tr a b
$(echo hi) a
}
E2
echo $(( 1+2 )) $(echo "$(date)" "${x:-"a b"}") ${#x} ${x//\}/y};
a=(1 2 "x y") b+=([k]=v); local -a c=(a); declare -A m=(['}']=1)
[[ x =~ ^(a|b)$ && -n ${x-} || ( $x == @(a|b) ) ]]
case $1 in a|b) echo;; *) :;; esac
case $1 in (x) { echo; };& y) ;;& esac
for ((i=0; i<3; i++)); do (( i > 1 )) && break; done
for x in a b; do echo "$x" >&2 2>/dev/null; done < <(echo) > >(cat)
while read -r l; do :; done <<< "$x"
if ! { a; b; } | c; then time d; elif e; then :; else { f; } >x; fi
x=`echo '}'` y="a `echo "}"` b" z=$'\'}\n' w=$"loc"
until false; do break; done; coprocx=1; echo {} {a,b} a} {a
g() { h() { :; }; }
function k { :; }
( cd / && exit 3 ) || true
echo "$(case x in x) echo ')' ;; esac)"
echo @(x) !(y) 2>&1 &
wait
}
f2() { echo '
}
touch /tmp/never
'; }
"#;
        assert_eq!(check_dump("constructs", script), 2);
    }

    fn one(text: &str) -> Result<(), FunctionError> {
        check_definitions(text.as_bytes(), ["f"])
    }

    /// Texts that would run something when sourced, or that the lexer cannot prove, are refused.
    #[test]
    fn hostile_texts_are_refused() {
        let hostile = [
            // Early close, then commands.
            "f () \n{ \n    :\n}\ntouch /tmp/PWNED\n",
            "f () \n{ \n    :\n}; touch /tmp/PWNED\n",
            "f () \n{ \n    : ; } ; touch /tmp/PWNED ; {\n    :\n}\n",
            "f () \n{ \n    :\n}\ntouch /tmp/PWNED\nf () \n{ \n    :\n}\n",
            // `}` in odd places.
            "f () \n{ \n    echo }\n}\n",
            "f () \n{ \n    x=1 }\n}\n",
            "f () \n{ \n    ! }\ntouch /tmp/PWNED\n}\n",
            "f () \n{ \n    time }\n}\n",
            "f () \n{ \n    if :; then }\n}\n",
            "f () \n{ \n    echo {\n}\ntouch /tmp/PWNED\n}\n",
            "f () \n{ \n}\n",
            "f () \n{ \n    a |}\n}\n",
            "f () \n{ \n    case x in }) :;; esac\n}\n",
            "f () \n{ \n    [[ } ]]\n}\n",
            "f () \n{ \n    x=( } )\n}\n",
            "f () \n{ \n    :\n}",
            "f () \n{ \n    :\n} \n",
            "f () \n{ \n    :\n}x\n",
            // Unterminated quotes, expansions, here-documents.
            "f () \n{ \n    echo 'a\n}\n",
            "f () \n{ \n    echo \"a\n}\n",
            "f () \n{ \n    echo $'a\\'\n}\n",
            "f () \n{ \n    echo $(a\n}\n",
            "f () \n{ \n    echo ${a\n}\n",
            "f () \n{ \n    echo $((a\n}\n",
            "f () \n{ \n    echo `a\n}\n",
            "f () \n{ \n    cat <<EOF\n}\ntouch /tmp/PWNED\n",
            "f () \n{ \n    cat <<EOF\nEOF \n}\n",
            "f () \n{ \n    cat <<'E F'\nE F\n}\n",
            "f () \n{ \n    cat <<$(id)\nx\n}\n",
            "f () \n{ \n    echo $(cat <<E)\nE\n}\n",
            // `$(` tricks and ambiguous constructs.
            "f () \n{ \n    echo $((echo a); touch /tmp/PWNED)\n}\n",
            "f () \n{ \n    ((echo a); (b))\n}\n",
            "f () \n{ \n    echo $[1+1]\n}\n",
            "f () \n{ \n    echo \"${x:-'}'}\"\n}\n",
            "f () \n{ \n    echo \"${x:-$'}'}\"\n}\n",
            "f () \n{ \n    echo ${x:-{}}\n}\n",
            "f () \n{ \n    echo $(})\n}\n",
            "f () \n{ \n    echo )\n}\n",
            "f () \n{ \n    ( :\n}\n",
            // Comments, line continuations, coprocesses.
            "f () \n{ \n    : # }\n}\n",
            "f () \n{ \n    #x\n}\n",
            "f () \n{ \n    \\\n}\ntouch /tmp/PWNED\n}\n",
            "f () \n{ \n    coproc :\n}\n",
            "f () \n{ \n    ;;\n}\n",
            "f () \n{ \n    esac\n}\n",
            // Bytes and names.
            "f () \n{ \n    : \0\n}\n",
            "g () \n{ \n    :\n}\n",
            "f() \n{ \n    :\n}\n",
            "f () { :; }\n",
            " f () \n{ \n    :\n}\n",
            "f () \n( :\n)\n",
            "",
        ];
        for text in hostile {
            assert!(one(text).is_err(), "accepted: {text:?}");
        }
        // Two definitions where one is listed; a listed function missing; the wrong order.
        let two = "f () \n{ \n    :\n}\ng () \n{ \n    :\n}\n";
        assert!(matches!(
            check_definitions(two.as_bytes(), ["f"]),
            Err(FunctionError::Trailing { .. })
        ));
        assert!(check_definitions(two.as_bytes(), ["f", "g", "h"]).is_err());
        assert!(check_definitions(two.as_bytes(), ["g", "f"]).is_err());
        check_definitions(two.as_bytes(), ["f", "g"]).unwrap();
        // The refusal names the function and what was wrong.
        let e = one("f () \n{ \n    echo }\n}\n").unwrap_err().to_string();
        assert!(e.contains("`f`") && e.contains("`}`"), "{e}");
    }

    /// Every hostile text that bash itself would read as a definition plus something else
    /// really does run that something in bash (so the corpus tests what matters).
    #[test]
    fn the_early_close_corpus_runs_code_in_bash() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let canary = dir.join("canary");
        for text in [
            "f () \n{ \n    :\n}\ntouch \"$CANARY\"\n",
            "f () \n{ \n    :\n}; touch \"$CANARY\"\n",
            "f () \n{ \n    echo {\n}\ntouch \"$CANARY\"\n}\n",
            "f () \n{ \n    cat <<EOF\n}\ntouch \"$CANARY\"\n",
        ] {
            let _ = std::fs::remove_file(&canary);
            let file = dir.join("defs.sh");
            std::fs::write(&file, text).unwrap();
            Command::new("bash")
                .args(["--norc", "-c", ". \"$1\" 2>/dev/null", "_"])
                .arg(&file)
                .env("CANARY", &canary)
                .status()
                .unwrap();
            let ran = canary.exists();
            assert!(one(text).is_err(), "{text:?}");
            assert!(
                ran || text.contains("<<EOF"),
                "bash did not run the payload of {text:?}"
            );
        }
    }

    /// Property: whatever the lexer accepts, bash only defines functions when it sources it.
    /// Random splices of dangerous fragments into real definitions; every accepted result is
    /// sourced by bash (each in a subshell) and must not run the `touch` any of them carries.
    #[test]
    fn accepted_mutations_run_nothing_in_bash() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Relative, run in `dir`: a splice inside the payload still creates its file there.
        let touch = |i: usize| format!("touch ran-{i}");
        let seeds = [
            "f () \n{ \n    echo \"a $(b 'c') ${d:-e}\" 'f' $'g\\'';\n    case $1 in \n        x | y)\n            z\n        ;;\n    esac;\n    cat <<EOF\nbody\nEOF\n\n    [[ $x =~ ^(a|b)$ ]] && { p; q; }\n}\n".to_owned(),
            "f () \n{ \n    local -a a=(1 \"2\");\n    for ((i=0; i<2; i++))\n    do\n        ( cd / ) || return;\n    done;\n    x=`echo y`;\n    echo $(( i + 1 )) <(true)\n}\n".to_owned(),
        ];
        let fragments = [
            "}\n",
            "\n}\n",
            "{ ",
            " }",
            "'",
            "\"",
            "$(",
            ")",
            "(",
            "`",
            "<<E\n",
            "\nE\n",
            "\\\n",
            "#",
            "case x in ",
            " esac",
            ";;",
            "((",
            "))",
            "${",
            "}",
            "[[ ",
            " ]]",
            "=(",
            "\n",
            " ",
            ";",
            "&",
            "|",
            "$'",
            "\\",
            "<<-'E'\n",
            "\tE\n",
            "function g ",
            " () ",
            "!",
            "then ",
            "do ",
            " fi",
            " done",
            "@(",
            "x=1 ",
        ];
        let payloads = [
            "TOUCH",
            "\nTOUCH\n",
            ";TOUCH;",
            "$(TOUCH)",
            "`TOUCH`",
            "&& TOUCH",
            "\n}\nTOUCH\ng () \n{ \n",
            "; } ; TOUCH ; { ",
        ];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let mut script = String::new();
        let previous = std::cell::RefCell::new(Vec::new());
        let (mut accepted, mut tried) = (0, 0);
        for i in 0..4000 {
            let mut text = seeds[i % seeds.len()].clone().into_bytes();
            for _ in 0..1 + next(4) {
                let piece = if next(3) == 0 {
                    payloads[next(payloads.len())].replace("TOUCH", &touch(i))
                } else {
                    fragments[next(fragments.len())].to_owned()
                };
                let at = "f () \n{ \n".len() + next(text.len() - "f () \n{ \n".len());
                text.splice(at..at, piece.bytes());
            }
            tried += 1;
            if one(std::str::from_utf8(&text).unwrap()).is_ok() {
                accepted += 1;
                // Alone, and after the previous accepted text (as the restore file puts
                // definitions one after another).
                let mut pair = previous.replace(Vec::new());
                pair.extend_from_slice(&text);
                for (name, bytes) in [(format!("t{i}.sh"), &text), (format!("p{i}.sh"), &pair)] {
                    let file = dir.join(name);
                    std::fs::write(&file, bytes).unwrap();
                    script.push_str(&format!(
                        "( builtin source {} ) >/dev/null 2>&1 </dev/null\n",
                        crate::shell::quote::quote(file.as_os_str().as_encoded_bytes())
                    ));
                }
                previous.replace(text);
            }
        }
        // Each sourced text may fail (the subshell's status); the driver itself must not.
        script.push_str("builtin exit 0\n");
        let driver = dir.join("driver.sh");
        std::fs::write(&driver, &script).unwrap();
        let status = Command::new("bash")
            .args(["--norc", "--noprofile"])
            .arg(&driver)
            .current_dir(dir)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .status()
            .unwrap();
        let ran: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                !(n == "driver.sh"
                    || (n.ends_with(".sh") && (n.starts_with('t') || n.starts_with('p'))))
            })
            .collect();
        assert!(status.success(), "bash failed: {status}");
        assert!(
            ran.is_empty(),
            "accepted texts ran a command in bash: {ran:?}"
        );
        // The mutations must exercise both sides.
        assert!(
            accepted > 50 && accepted < tried,
            "{accepted} of {tried} accepted"
        );
        eprintln!("{accepted} of {tried} mutations accepted, none ran anything");
    }
}
