"""Tools an agent can use beyond end_call / transfer_call: the customer's HTTP tools and the keypad.

definitions.py: what an agent declares (validated at save, turned into the LLM's tool schemas);
http.py: one signed, SSRF-guarded, bounded call to the customer's endpoint;
turns.py: a tool call and its result as one line of the conversation (transcript and LLM history);
digits.py: keypad questions and tool steps of the scripted agent's script;
runner.py: the Session's side (filler line, barge-in and hang-up during a call, feeding the result back).
"""
