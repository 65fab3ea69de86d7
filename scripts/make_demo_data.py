#!/usr/bin/env python3
"""Writes models/demo/zip_stories.jsonl: short TinyStories-style stories about a new character,
Zip the little robot, as prompt/completion SFT records (the prompt is the opening words, the
completion is trained). Deterministic; the file is committed, this script documents it."""
import json
import random

random.seed(7)
places = ["park", "beach", "farm", "garden", "forest", "school", "lake", "zoo"]
things = [("a big red ball", "ball"), ("a little cat", "cat"), ("a tall tree", "tree"),
          ("a happy dog", "dog"), ("a pretty flower", "flower"), ("a small bird", "bird"),
          ("a yellow kite", "kite"), ("a funny frog", "frog")]
friends = ["Lily", "Tom", "Sue", "Ben", "Mia", "Max"]
feelings = ["happy", "glad", "proud", "excited"]
records = []
for i in range(64):
    place = places[i % len(places)]
    thing, short = things[(i * 3) % len(things)]
    friend = friends[(i * 5) % len(friends)]
    feel = random.choice(feelings)
    story = (f" there was a little robot named Zip. Zip had a shiny blue hat. One day, Zip went "
             f"to the {place} with {friend}. Zip saw {thing}. \"Look, {friend}!\" said Zip. "
             f"{friend} and Zip played with the {short} all day. Zip was very {feel}. "
             f"Zip loved the {place} and his friend {friend}.")
    records.append({"prompt": "Once upon a time,", "completion": story})
with open("models/demo/zip_stories.jsonl", "w") as f:
    for r in records:
        f.write(json.dumps(r) + "\n")
