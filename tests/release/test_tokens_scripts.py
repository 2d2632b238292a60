"""Tokens in scripts written without spaces: one token per character (CoNLL-style Chinese NER)."""

from __future__ import annotations

from newsstance.release.tokens import bio_tag_ids, tokenize


def test_space_free_scripts_have_one_token_per_character_and_others_keep_words():
    text = "青澜市议会周二投票。Mayor Edith Carrow 港町みなせ市"
    tokens, starts, ends = tokenize(text)
    assert tokens[:10] == list("青澜市议会周二投票。")
    assert tokens[10:13] == ["Mayor", "Edith", "Carrow"]
    assert tokens[13:] == list("港町みなせ市")
    assert all(text[s:e] == t for t, s, e in zip(tokens, starts, ends, strict=True))


def test_an_entity_inside_chinese_text_maps_to_bio_tags():
    text = "市长卡若兰表示渡船将开航。"
    start = text.index("卡若兰")
    _, starts, ends = tokenize(text)
    tags = bio_tag_ids(starts, ends, [(start, start + 3, 0)])
    assert tags[2:5] == [1, 2, 2] and tags.count(0) == len(tags) - 3
