//! Minimal glob matching for policy patterns: `*` matches any run of characters.

/// True when `text` matches `pattern`, where `*` matches any (possibly empty) run.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last star: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// True when any pattern matches `text`.
pub(crate) fn any_match(patterns: &[String], text: &str) -> bool {
    patterns.iter().any(|p| glob_match(p, text))
}

/// True when the two patterns could match a common string (approximation used to detect
/// overlapping freezes: equal, or one matches the other read literally).
pub(crate) fn patterns_intersect(a: &[String], b: &[String]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| glob_match(x, y) || glob_match(y, x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("aks-*", "aks-eu-west"));
        assert!(glob_match("*-west", "aks-eu-west"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(!glob_match("prod", "prod2"));
        assert!(glob_match("prod", "prod"));
    }
}
