"""Unit tests of the directory collector, ldap_table parser/evaluator and directory rules."""
