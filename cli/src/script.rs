//! Several migration files checked as one migration, in order, with every line number of the
//! result mapped back to its file.

pub struct Combined {
    /// The files one after the other; each is ended by a line holding `;` so that a last
    /// statement without its semicolon does not run into the next file (psql -f ends it too).
    pub text: String,
    /// (label, first line, last line) of each file in `text`.
    files: Vec<(String, i32, i32)>,
}

impl Combined {
    pub fn new(sources: &[(String, String)]) -> Combined {
        let mut text = String::new();
        let mut files = Vec::new();
        let mut line = 1;
        for (label, body) in sources {
            let lines = body.lines().count().max(1) as i32;
            files.push((label.clone(), line, line + lines - 1));
            text.push_str(body);
            if !body.ends_with('\n') {
                text.push('\n');
            }
            line += lines;
            if sources.len() > 1 {
                text.push_str(";\n");
                line += 1;
            }
        }
        Combined { text, files }
    }

    /// The file and line within it of a line of the combined text.
    pub fn locate(&self, line: i32) -> (&str, i32) {
        let Some(i) = self.files.iter().rposition(|(_, first, _)| *first <= line) else {
            return self.files.first().map_or(("", line), |(l, _, _)| (l.as_str(), line));
        };
        let (label, first, last) = &self.files[i];
        (label, line.min(*last) - first + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_map_back_to_their_files() {
        let c = Combined::new(&[
            (
                "a.sql".into(),
                "CREATE TABLE t (id int);\nCREATE INDEX ON t (id)".into(),
            ),
            ("b.sql".into(), "\nDROP TABLE t;\n".into()),
        ]);
        assert_eq!(
            c.text,
            "CREATE TABLE t (id int);\nCREATE INDEX ON t (id)\n;\n\nDROP TABLE t;\n;\n"
        );
        assert_eq!(c.locate(1), ("a.sql", 1));
        assert_eq!(c.locate(2), ("a.sql", 2));
        // The statement that ends on the separator line ends on the file's last line.
        assert_eq!(c.locate(3), ("a.sql", 2));
        assert_eq!(c.locate(5), ("b.sql", 2));
    }

    #[test]
    fn one_file_is_sent_as_it_is() {
        let c = Combined::new(&[("-".into(), "SELECT 1;\n".into())]);
        assert_eq!(c.text, "SELECT 1;\n");
        assert_eq!(c.locate(1), ("-", 1));
    }
}
