"""FreeSWITCH configuration tooling: check-config, a dialplan evaluator, generated account XML.

Modules:
    pcre        FreeSWITCH (PCRE) regular expressions translated to Python's `re`
    xmltree     the X-PRE-PROCESS preprocessor and a parsed tree that remembers file:line
    check       `python -m fsconf.check`: every problem as "file:line: message"
    dialplan    evaluates mod_dialplan_xml contexts for a given call
    provision   gateway / ACL list / directory user XML for a customer SIP account
"""
