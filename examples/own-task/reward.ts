// The tutorial's reward: partial credit for sorting digits. 1 for the exact answer; otherwise the share of
// positions that hold the right digit (over the longer of the two strings), so a nearly sorted answer scores
// more than a wrong one. A reward gets {prompt, completion, answer, fields, id} and returns a number, or null
// when it does not apply.
export function score(s: { completion: string; answer?: string }): number | null {
  if (s.answer === undefined) return null;
  const got = s.completion.trim();
  const want = s.answer;
  if (got === want) return 1;
  let same = 0;
  for (let i = 0; i < Math.min(got.length, want.length); i++) if (got[i] === want[i]) same++;
  return same / Math.max(got.length, want.length, 1);
}
