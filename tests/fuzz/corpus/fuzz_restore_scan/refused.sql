\restrict K
CREATE ROLE x;
/* c /* d */ */
\unrestrict K
