SET standard_conforming_strings = on;
COPY t (a) FROM stdin;
1	\\N
\.
SELECT $q$ x $q$, E'a\'b';
