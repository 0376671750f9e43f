#!/usr/bin/env python3
"""Compares SQLite FTS5 tokenizers for message search (issue 19):
`unicode61 remove_diacritics 2` (what natter uses) against `trigram`.

Builds both indexes over the same N generated chat messages (a Zipf-like
vocabulary, names with accents, rare words, Cyrillic and Chinese lines), then
prints each index's size, query latencies and which of a set of real-world
queries each one answers. Uses Python's own sqlite3 module (no natter build
needed): `python3 scripts/compare-tokenizers.py [N]`. Numbers are in
BENCHMARKS.md "Search".
"""
import random
import sqlite3
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
rng = random.Random(19)
COMMON = ("the to i you a and it is in for on we that of be this ok can will have at with just so do are not "
          "me my but what if all get yes no there was thanks good today tomorrow now time meeting call later know "
          "think see need let one back work about up out go going new sure great sounds lunch coffee team release "
          "date friday monday week plan update review build test deploy server issue fix bug branch merge design").split()
NAMES = ["Ana", "Bob", "Zoë", "Mateo", "Priya", "Amélie", "Jonas", "Fatima", "Hiroshi", "Tomasz"]
RARE = ["kumquat", "zeppelin", "quasar", "marzipan", "xylophone"]
CYRILLIC = ["привет, как дела", "встреча завтра в десять", "спасибо большое"]
CHINESE = ["明天的会议改到三点", "我们周五发布新版本", "谢谢大家"]


def message():
    roll = rng.random()
    if roll < 0.005:
        return rng.choice(CYRILLIC)
    if roll < 0.01:
        return rng.choice(CHINESE)
    words = []
    for _ in range(rng.randint(3, 16)):
        r = rng.random()
        if r < 0.04:
            words.append(rng.choice(NAMES))
        elif r < 0.045:
            words.append(rng.choice(RARE))
        else:
            words.append(COMMON[min(int(rng.random() ** 2.2 * len(COMMON)), len(COMMON) - 1)])
    return " ".join(words)


rows = [(i + 1, message()) for i in range(N)]
db = sqlite3.connect(":memory:")
print(f"SQLite {sqlite3.sqlite_version}, {N} messages")
TOKENIZERS = {
    "unicode61": "unicode61 remove_diacritics 2",
    "trigram": "trigram",  # remove_diacritics for trigram needs SQLite >= 3.45
}
for name, tok in TOKENIZERS.items():
    db.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(content, tokenize='{tok}')")
    t = time.perf_counter()
    db.executemany(f"INSERT INTO {name}(rowid, content) VALUES (?, ?)", rows)
    db.commit()
    size = db.execute(f"SELECT sum(length(block)) FROM {name}_data").fetchone()[0]
    content = db.execute(f"SELECT sum(length(c0)) FROM {name}_content").fetchone()[0]
    print(f"{name:10} index {size / 1e6:7.1f} MB (text itself {content / 1e6:.1f} MB), "
          f"built in {time.perf_counter() - t:.1f} s")


def query(name, q):
    # natter's query shape: quoted words, the last one a prefix where asked.
    t = time.perf_counter()
    hits = db.execute(f"SELECT rowid FROM {name} WHERE {name} MATCH ? ORDER BY rowid DESC LIMIT 21", (q,)).fetchall()
    return len(hits), (time.perf_counter() - t) * 1000


print("\nlatency of the newest 21 hits (ms, median of 20):")
for label, u61, tri in [
    ("one common word", '"meeting"', '"meeting"'),
    ("two words", '"release" "date"', '"release" AND "date"'),
    ("rare prefix", '"kumq"*', '"kumq"'),
]:
    out = []
    for name, q in (("unicode61", u61), ("trigram", tri)):
        times = sorted(query(name, q)[1] for _ in range(20))
        out.append(f"{name} {times[10]:6.2f}")
    print(f"  {label:16} " + "   ".join(out))

print("\nwhat each finds (hits among the newest 21):")
for label, u61, tri in [
    ("name, no accent 'zoe'", '"zoe"', '"zoe"'),
    ("name as written 'Zoë'", '"zoë"', '"zoë"'),
    ("prefix 'amel' (Amélie)", '"amel"*', '"amel"'),
    ("two letters 'ok'", '"ok"', '"ok"'),
    ("inside a word 'lease'", '"lease"', '"lease"'),
    ("Cyrillic word 'завтра'", '"завтра"', '"завтра"'),
    ("Chinese word '会议'", '"会议"', '"会议"'),
    ("Chinese prefix '明天'", '"明天"*', '"明天"'),
]:
    a, b = query("unicode61", u61)[0], query("trigram", tri)[0]
    print(f"  {label:28} unicode61 {a:3}   trigram {b:3}")
