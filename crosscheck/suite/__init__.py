"""The seed cases behind ``crosscheck run``: each jaxlin module and its torch_ref twin (cases, the one
pair builder), the jobs that check, probe and time them, and the answers the report gives."""
