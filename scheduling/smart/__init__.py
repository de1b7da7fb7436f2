"""Smart booking: a patient describes a need (`request`), a worker (`tasks`) runs the job
(`job`), which books the best of the slots `scoring` ranks; `consumer` is the job's websocket.
"""
